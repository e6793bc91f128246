//! Which process owns a socket, from `/proc/*/fd`.

use std::collections::HashMap;

/// The process that holds a socket.
pub struct Owner {
    pub pid: u32,
    pub command: String,
}

/// Socket inode to owning process, from `/proc/*/fd` (processes we may not inspect are
/// skipped, so their sockets show no owner).
pub fn socket_owners() -> HashMap<u64, Owner> {
    let mut owners = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return owners;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let inode = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(inode) = inode {
                owners.entry(inode).or_insert_with(|| Owner {
                    pid,
                    command: std::fs::read_to_string(entry.path().join("comm"))
                        .map(|c| c.trim().to_string())
                        .unwrap_or_default(),
                });
            }
        }
    }
    owners
}
