//! Any bytes as a message from the cluster bus: reading never panics, and a message that
//! passes the check reads back the same after writing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natter::cluster::wire::Wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(wire) = serde_json::from_slice::<Wire>(data)
        && wire.is_clean()
    {
        let again = serde_json::to_vec(&wire).expect("serializes");
        let back: Wire = serde_json::from_slice(&again).expect("reads back");
        assert_eq!(back, wire);
        assert!(back.is_clean());
    }
});
