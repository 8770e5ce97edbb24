//! The queue message envelope decoder on arbitrary message bodies.
//!
//! Beyond "no panic": a body that does not claim to be an envelope is delivered byte for byte
//! with the message id as key; a decoded envelope re-encodes to one that decodes the same; an
//! error has a message; and any key/body pair the producer side can make round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spotkit_worker::{encode_envelope, parse_envelope};

const MESSAGE_ID: &str = "fuzz-message-id";

fuzz_target!(|raw: &[u8]| {
    match parse_envelope(MESSAGE_ID, raw) {
        Ok(decoded) => {
            if decoded.key == MESSAGE_ID && decoded.body == raw {
                // Delivered as is (or an envelope that happens to equal itself): nothing more.
            } else {
                let again =
                    parse_envelope("other-id", &encode_envelope(&decoded.key, &decoded.body))
                        .expect("a re-encoded envelope decodes");
                assert_eq!(again, decoded);
            }
        }
        Err(e) => assert!(
            e.to_string().starts_with("spotkit envelope")
                || e.to_string().starts_with("malformed spotkit envelope"),
            "{e}"
        ),
    }

    // The producer side: split the input into a key and a body.
    let split = raw.first().map_or(0, |&b| usize::from(b)).min(raw.len());
    let (key, body) = raw.split_at(split);
    let key = String::from_utf8_lossy(key);
    if !key.is_empty() && key.len() <= 512 {
        let decoded = parse_envelope(MESSAGE_ID, &encode_envelope(&key, body))
            .expect("every envelope we encode decodes");
        assert_eq!(
            (decoded.key.as_str(), decoded.body.as_slice()),
            (&*key, body)
        );
    }
});
