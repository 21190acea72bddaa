//! An emergency reserve of disk space: a file of `storage.ballast_bytes` beside the database
//! (`<database>.ballast`), allocated while there is room. When the disk fills up and
//! perfwatch must stop, releasing it gives the final flush the space to write what memory
//! still holds; it is allocated again once there is room. (CockroachDB keeps an emergency
//! ballast for the same reason.)

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Ballast {
    path: PathBuf,
    bytes: u64,
}

impl Ballast {
    /// The ballast of the database at `database`; `bytes == 0` disables it.
    pub fn beside(database: &Path, bytes: u64) -> Ballast {
        let mut name = database.as_os_str().to_owned();
        name.push(".ballast");
        Ballast { path: PathBuf::from(name), bytes }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Allocates the ballast unless it is there already, it is disabled, or the disk has less
    /// than three times its size free (it must not be what fills the disk). Returns whether it
    /// is in place.
    pub fn ensure(&self) -> std::io::Result<bool> {
        if self.bytes == 0 {
            return Ok(false);
        }
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.bytes) {
            return Ok(true);
        }
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if free_bytes(dir)? < self.bytes.saturating_mul(3) {
            return Ok(false);
        }
        let file = std::fs::File::create(&self.path)?;
        // Really allocated (set_len would make a sparse file that reserves nothing).
        let len = libc::off_t::try_from(self.bytes).unwrap_or(libc::off_t::MAX);
        // SAFETY: posix_fallocate only reads the descriptor, which `file` keeps open.
        let err = unsafe { libc::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, len) };
        if err != 0 {
            drop(file);
            let _ = std::fs::remove_file(&self.path);
            return Err(std::io::Error::from_raw_os_error(err));
        }
        file.sync_all()?;
        Ok(true)
    }

    /// Deletes the ballast; returns whether there was one to release.
    pub fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }
}

/// Bytes free for an unprivileged writer on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: statvfs writes only into the zeroed struct it is given; `path` is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ballast_is_allocated_once_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let ballast = Ballast::beside(&dir.path().join("perfwatch.db"), 1 << 20);
        assert!(ballast.ensure().unwrap());
        assert_eq!(std::fs::metadata(ballast.path()).unwrap().len(), 1 << 20);
        assert!(ballast.ensure().unwrap(), "already there");
        assert!(ballast.release());
        assert!(!ballast.release(), "nothing left to release");
        assert!(!Ballast::beside(&dir.path().join("x.db"), 0).ensure().unwrap(), "disabled");
    }
}
