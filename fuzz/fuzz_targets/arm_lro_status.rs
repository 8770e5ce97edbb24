//! The `Azure-AsyncOperation` status-body parser on arbitrary bodies.
//!
//! Beyond "no panic": a body that is not a status object is `Malformed` naming what was being
//! read; a `Failed`/`Canceled` status is always `OperationFailed` carrying that status; any
//! other status is running, never success.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spotkit_azure::arm::{ArmError, OperationState, parse_operation_status};

fuzz_target!(|body: &[u8]| {
    let status_field = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("status")
                .and_then(|s| s.as_str())
                .map(str::to_ascii_lowercase)
        });
    match parse_operation_status(body) {
        Ok(OperationState::Succeeded) => {
            if let Some(status) = &status_field {
                assert_eq!(status, "succeeded");
            }
        }
        Ok(OperationState::Ended(err)) => {
            let ArmError::OperationFailed { status, .. } = &err else {
                panic!("an ended operation must be OperationFailed, got {err:?}");
            };
            assert!(matches!(
                status.to_ascii_lowercase().as_str(),
                "failed" | "canceled" | "cancelled"
            ));
            assert!(err.to_string().contains(status.as_str()));
        }
        Ok(OperationState::Running) => {
            assert!(!matches!(
                status_field.as_deref(),
                Some("succeeded" | "failed" | "canceled" | "cancelled")
            ));
        }
        Err(err) => {
            assert!(matches!(err, ArmError::Malformed { .. }), "{err:?}");
            assert!(
                err.to_string().contains("Azure-AsyncOperation status"),
                "{err}"
            );
        }
    }
});
