//! Any bytes as admin socket requests: the request parser never panics, every line gets
//! one reply, and every reply is one line of JSON natterctl can read back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natter::admin::proto;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n').take(64) {
        let (id, command) = proto::parse_request(line);
        let reply = match &command {
            Ok(_) => proto::ok_line(id, &serde_json::Value::Object(Default::default())),
            Err(failure) => proto::error_line(id, failure),
        };
        assert!(!reply.contains('\n'), "{reply:?}");
        assert!(proto::parse_response(&reply).is_ok() == command.is_ok());
    }
});
