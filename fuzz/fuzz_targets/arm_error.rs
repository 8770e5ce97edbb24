//! ARM's error-body parser on arbitrary bodies.
//!
//! Beyond "no panic": a parsed body has a code, its root cause has a code and is among
//! `codes()`, and the `ArmError` built from it for any status names that code in its message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spotkit_azure::arm::{ArmError, parse_error_body};

fuzz_target!(|data: &[u8]| {
    let Some((&status_byte, body)) = data.split_first() else {
        return;
    };
    let status = 400 + u16::from(status_byte) % 200;
    let Some(detail) = parse_error_body(body) else {
        let err = ArmError::from_status(status, None, body);
        assert!(err.to_string().contains(&status.to_string()), "{err}");
        return;
    };
    assert!(
        !detail.code.is_empty(),
        "parsed an error body without a code"
    );
    let root = detail.root_cause();
    assert!(!root.code.is_empty());
    let codes = detail.codes();
    assert_eq!(codes.first(), Some(&detail.code.as_str()));
    assert!(codes.contains(&root.code.as_str()));
    let _ = detail.is_too_many_requests();
    let err = ArmError::from_status(status, Some(detail.clone()), body);
    let text = err.to_string();
    assert!(text.contains(&detail.code), "{text}");
    if let Some((code, _message)) = err.root_cause() {
        assert!(!code.is_empty());
    }
    let _ = err.is_retryable();
});
