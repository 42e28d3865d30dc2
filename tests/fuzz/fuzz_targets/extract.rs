//! Decode-and-save any input into a fresh folder: no panic, no hang, and
//! nothing written outside the folder or through a symbolic link in it.

#![no_main]

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// A name a part is likely to want, pre-planted as a symbolic link that
/// points outside the folder.
const TRAP: &str = "attachment-1.bin";

fuzz_target!(|data: &[u8]| {
    let root = tempfile::tempdir().expect("temporary folder");
    let dir = root.path().join("msg");
    fs::create_dir(&dir).unwrap();
    let outside = root.path().join("outside");
    std::os::unix::fs::symlink(&outside, dir.join(TRAP)).unwrap();

    let result = mailctl::mail::extract::extract_to_dir(data, &dir);

    // Nothing beside the folder, and the link's target never created.
    let top: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, vec![std::ffi::OsString::from("msg")], "wrote outside");
    assert!(!outside.exists(), "followed a symbolic link");
    // Inside: plain files only (and the planted link), no subfolders.
    for entry in fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let name = entry.file_name();
        assert!(
            kind.is_file() || (kind.is_symlink() && name == TRAP),
            "unexpected {:?}",
            name
        );
    }
    if let Ok(manifest) = result {
        let written = fs::read(dir.join("manifest.json")).expect("manifest written");
        let _: serde_json::Value = serde_json::from_slice(&written).expect("manifest is JSON");
        for part in &manifest.parts {
            if let Some(name) = &part.saved_as {
                assert!(is_one_component(name), "unsafe name {name:?}");
                let meta = fs::symlink_metadata(dir.join(name)).expect("saved file exists");
                assert!(meta.is_file());
            }
        }
    }
});

fn is_one_component(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(std::path::Component::Normal(_)))
        && parts.next().is_none()
        && !name.starts_with('.')
        && name.len() <= 255
        && !name.chars().any(|c| c.is_control())
}
