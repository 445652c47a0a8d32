//! The filesystem seam: every byte the journal writes or reads goes through [`Fs`].
//!
//! [`StdFs`] is the real disk. [`SimFs`] is an in-memory disk that remembers what was fsynced and
//! can simulate a power cut (drop everything written since the last fsync, tear the last write
//! at a random byte, forget directory entries that were never synced), so tests can prove that
//! no acknowledged record is lost without pulling a plug. [`FaultyFs`] wraps either and makes
//! chosen operations fail (EMFILE, ENOSPC, EIO) or panic, so tests can prove that the journal
//! recovers from a passing failure and stops the daemon on a lasting one. Nothing in the daemon
//! builds a `FaultyFs`: it reaches the journal only through [`super::Journal::open_with_fs`].

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;

/// A file opened for appending (the open segment).
pub trait AppendFile: Send {
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// fdatasync: after it returns, everything appended so far survives a power cut.
    fn sync(&mut self) -> io::Result<()>;
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// True only for the journal's stand-in before a segment is open.
    fn is_placeholder(&self) -> bool {
        false
    }
}

/// A file opened for reading.
pub trait ReadAt: Send {
    /// Up to `len` bytes from `offset` (fewer at the end of the file).
    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    fn size(&mut self) -> io::Result<u64>;
}

/// A held lock; released when dropped.
pub trait LockGuard: Send + Sync {}

/// Who holds a lock we could not take.
#[derive(Debug)]
pub enum LockFailure {
    /// Held by another opener; `holder` is the PID written in the lock file (may be empty).
    Held {
        holder: String,
    },
    Io(io::Error),
}

/// The operations the journal needs from a filesystem.
pub trait Fs: Send + Sync {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens for positional reads; the handle keeps reading the same file even if the path is
    /// renamed over or removed (a reader is never confused by compaction or release).
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>>;
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Opens for appending, creating the file if needed.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// Creates or replaces `path` with `data` and fsyncs it (not the directory).
    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` and writes `pid` into it.
    fn lock(&self, path: &Path, pid: u32) -> Result<Box<dyn LockGuard>, LockFailure>;
}

/// Writes `data` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
pub fn write_atomic(fs: &dyn Fs, path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs.write_synced(&tmp, data)?;
    fs.rename(&tmp, path)?;
    fs.sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

struct StdAppend(File);

impl AppendFile for StdAppend {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        self.0.seek(SeekFrom::Start(len)).map(|_| ())
    }
}

struct StdRead(File);

impl ReadAt for StdRead {
    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.0.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(len.min(1 << 24));
        (&mut self.0).take(len as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

struct StdLock(#[allow(dead_code)] File);
impl LockGuard for StdLock {}

impl Fs for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>> {
        Ok(Box::new(StdRead(File::open(path)?)))
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Box::new(StdAppend(f)))
    }
    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut f = File::create(path)?;
        f.write_all(data)?;
        f.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn lock(&self, path: &Path, pid: u32) -> Result<Box<dyn LockGuard>, LockFailure> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(LockFailure::Io)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = f.read_to_string(&mut holder);
                return Err(LockFailure::Held {
                    holder: holder.trim().to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(LockFailure::Io(e)),
        }
        f.set_len(0).map_err(LockFailure::Io)?;
        f.write_all(format!("{pid}\n").as_bytes())
            .map_err(LockFailure::Io)?;
        Ok(Box::new(StdLock(f)))
    }
}

// ---- the simulated disk ----

#[derive(Default, Clone)]
struct SimFile {
    /// Bytes as the running system sees them.
    current: Vec<u8>,
    /// Bytes guaranteed on the medium (as of the last fsync).
    synced: Vec<u8>,
}

#[derive(Default)]
struct SimState {
    /// Bumped by each power cut: handles from before it fail with EIO (the old process is dead).
    generation: u64,
    files: HashMap<u64, SimFile>,
    next_inode: u64,
    /// Directory entries as the running system sees them: path → inode.
    names: BTreeMap<PathBuf, u64>,
    /// Directory entries as of each directory's last fsync.
    synced_names: BTreeMap<PathBuf, u64>,
    locks: BTreeMap<PathBuf, u32>,
    fsyncs: u64,
    /// How long a file fsync takes (outside the lock): a power cut during it loses the data.
    sync_latency: std::time::Duration,
}

/// An in-memory disk with power cuts. Cheap to clone (shared state). Each handle belongs to
/// one "boot": after [`SimFs::power_cut`], every operation through an older handle fails, as the
/// process that held it is dead; [`SimFs::boot`] gives a handle for the next one.
#[derive(Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
    generation: u64,
}

struct SimAppend {
    state: Arc<Mutex<SimState>>,
    inode: u64,
    generation: u64,
}

fn dead() -> io::Error {
    io::Error::other("simulated power cut: this handle belongs to a dead process")
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", p.display()),
    )
}

impl SimAppend {
    fn with<T>(&self, f: impl FnOnce(&mut SimFile) -> T) -> io::Result<T> {
        let mut s = lock(&self.state);
        if s.generation != self.generation {
            return Err(dead());
        }
        let file = s.files.get_mut(&self.inode).ok_or_else(dead)?;
        Ok(f(file))
    }
}

impl AppendFile for SimAppend {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.with(|f| f.current.extend_from_slice(data))
    }
    fn sync(&mut self) -> io::Result<()> {
        let latency = lock(&self.state).sync_latency;
        if !latency.is_zero() {
            // The medium is busy: a power cut now tears what was appended since the last sync.
            std::thread::sleep(latency);
        }
        self.with(|f| f.synced = f.current.clone())?;
        lock(&self.state).fsyncs += 1;
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.with(|f| f.current.truncate(len as usize))
    }
}

struct SimRead {
    state: Arc<Mutex<SimState>>,
    inode: u64,
}

impl ReadAt for SimRead {
    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let s = lock(&self.state);
        let cur = &s.files.get(&self.inode).ok_or_else(dead)?.current;
        let start = (offset as usize).min(cur.len());
        let end = start.saturating_add(len).min(cur.len());
        Ok(cur[start..end].to_vec())
    }
    fn size(&mut self) -> io::Result<u64> {
        let s = lock(&self.state);
        Ok(s.files.get(&self.inode).ok_or_else(dead)?.current.len() as u64)
    }
}

struct SimLock {
    state: Arc<Mutex<SimState>>,
    path: PathBuf,
    generation: u64,
}
impl LockGuard for SimLock {}
impl Drop for SimLock {
    fn drop(&mut self) {
        let mut s = lock(&self.state);
        if s.generation == self.generation {
            s.locks.remove(&self.path);
        }
    }
}

fn lock(m: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    // A panic while holding the lock leaves plain data; keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimFs {
    pub fn new() -> SimFs {
        SimFs::default()
    }

    /// Makes every file fsync take `latency` (like an SD card's 2–20 ms), so that power cuts land
    /// between a write and its fsync.
    pub fn set_sync_latency(&self, latency: std::time::Duration) {
        lock(&self.state).sync_latency = latency;
    }

    /// A handle for the system as it is now (after the latest power cut).
    pub fn boot(&self) -> SimFs {
        SimFs {
            state: self.state.clone(),
            generation: lock(&self.state).generation,
        }
    }

    /// The state, if this handle's process is still alive.
    fn live(&self) -> io::Result<MutexGuard<'_, SimState>> {
        let s = lock(&self.state);
        if s.generation == self.generation {
            Ok(s)
        } else {
            Err(dead())
        }
    }

    /// Number of fsyncs (file or directory) so far.
    pub fn fsyncs(&self) -> u64 {
        lock(&self.state).fsyncs
    }

    /// Cuts the power: every file keeps its synced bytes plus a random prefix of what was
    /// appended after the last fsync (a torn write); directory entries fall back to their last
    /// synced state; handles and locks of the old "process" die.
    pub fn power_cut(&self, rng: &mut impl Rng) {
        let mut s = lock(&self.state);
        s.generation += 1;
        s.locks.clear();
        s.names = s.synced_names.clone();
        for f in s.files.values_mut() {
            let extra = if f.current.len() > f.synced.len() && f.current.starts_with(&f.synced) {
                rng.random_range(0..=f.current.len() - f.synced.len())
            } else {
                0
            };
            let keep = f.synced.len() + extra;
            let mut bytes = f.current.clone();
            bytes.truncate(keep);
            if !bytes.starts_with(&f.synced) {
                bytes = f.synced.clone();
            }
            f.current = bytes.clone();
            f.synced = bytes;
        }
    }

    fn inode(s: &SimState, p: &Path) -> io::Result<u64> {
        s.names.get(p).copied().ok_or_else(|| not_found(p))
    }

    /// Flips one bit of a file as the running system sees it (and as synced): corruption tests.
    pub fn flip_bit(&self, path: &Path, byte: usize, bit: u8) -> io::Result<()> {
        let mut s = lock(&self.state);
        let ino = Self::inode(&s, path)?;
        let f = s.files.get_mut(&ino).ok_or_else(|| not_found(path))?;
        for bytes in [&mut f.current, &mut f.synced] {
            if let Some(b) = bytes.get_mut(byte) {
                *b ^= 1 << bit;
            }
        }
        Ok(())
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        self.live().map(|_| ())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.live()?;
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.live()?;
        let ino = Self::inode(&s, path)?;
        Ok(s.files[&ino].current.clone())
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>> {
        let s = self.live()?;
        let inode = Self::inode(&s, path)?;
        Ok(Box::new(SimRead {
            state: self.state.clone(),
            inode,
        }))
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        let s = self.live()?;
        let ino = Self::inode(&s, path)?;
        Ok(s.files[&ino].current.len() as u64)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut s = self.live()?;
        let ino = match s.names.get(path) {
            Some(&ino) => ino,
            None => {
                s.next_inode += 1;
                let ino = s.next_inode;
                s.files.insert(ino, SimFile::default());
                s.names.insert(path.to_path_buf(), ino);
                ino
            }
        };
        Ok(Box::new(SimAppend {
            state: self.state.clone(),
            inode: ino,
            generation: s.generation,
        }))
    }
    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.live()?;
        s.next_inode += 1;
        let ino = s.next_inode;
        s.files.insert(
            ino,
            SimFile {
                current: data.to_vec(),
                synced: data.to_vec(),
            },
        );
        s.names.insert(path.to_path_buf(), ino);
        s.fsyncs += 1;
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.live()?;
        let ino = s.names.remove(from).ok_or_else(|| not_found(from))?;
        s.names.insert(to.to_path_buf(), ino);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.live()?;
        s.names.remove(path).ok_or_else(|| not_found(path))?;
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.live()?;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        s.synced_names.retain(|p, _| !in_dir(p));
        let entries: Vec<(PathBuf, u64)> = s
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        s.synced_names.extend(entries);
        s.fsyncs += 1;
        Ok(())
    }
    fn lock(&self, path: &Path, pid: u32) -> Result<Box<dyn LockGuard>, LockFailure> {
        let mut s = self.live().map_err(LockFailure::Io)?;
        if let Some(holder) = s.locks.get(path) {
            return Err(LockFailure::Held {
                holder: holder.to_string(),
            });
        }
        s.locks.insert(path.to_path_buf(), pid);
        Ok(Box::new(SimLock {
            state: self.state.clone(),
            path: path.to_path_buf(),
            generation: s.generation,
        }))
    }
}

// ---- the faulty disk ----

/// An operation [`FaultyFs`] can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsOp {
    /// Creating or opening a file for writing: `open_append`, and the create of `write_synced`.
    Create,
    /// Writing bytes: `AppendFile::append`, and the write of `write_synced`.
    Write,
    /// A file's fsync: `AppendFile::sync`, and the fsync of `write_synced`.
    Sync,
    /// A directory's fsync.
    SyncDir,
}

/// The error a [`FaultyFs`] injects (Linux errno values, as the kernel reports them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Too many open files (the process's descriptor limit).
    Emfile,
    /// No space left on device.
    Enospc,
    /// Input/output error (a failing card).
    Eio,
    /// Not an error: the operation panics (a bug in the layer below).
    Panic,
}

impl Fault {
    fn strike(self, op: FsOp) -> io::Error {
        let errno = match self {
            Fault::Emfile => 24,
            Fault::Enospc => 28,
            Fault::Eio => 5,
            Fault::Panic => panic!("injected panic in {op:?}"),
        };
        io::Error::from_raw_os_error(errno)
    }
}

#[derive(Debug, Default)]
struct Armed {
    /// Per operation: the fault, and how many more times it strikes (`None`: until cleared).
    faults: HashMap<FsOp, (Fault, Option<u32>)>,
    /// Faults that struck so far.
    struck: u64,
}

impl Armed {
    /// The fault `op` meets now, if any (counted).
    fn take(&mut self, op: FsOp) -> Option<Fault> {
        let (fault, left) = self.faults.get_mut(&op)?;
        match left {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        self.struck += 1;
        Some(*fault)
    }
}

/// Fails (or panics) if a fault is armed for `op`; the lock is released first, so an injected
/// panic never poisons it.
fn check(armed: &Mutex<Armed>, op: FsOp) -> io::Result<()> {
    let fault = lock_armed(armed).take(op);
    fault.map_or(Ok(()), |f| Err(f.strike(op)))
}

/// A filesystem whose operations fail on demand: wraps another [`Fs`] (the real disk or a
/// [`SimFs`]) and injects a [`Fault`] into chosen [`FsOp`]s, for as long as a test says. Cheap
/// to clone (the clones share their faults).
#[derive(Clone)]
pub struct FaultyFs {
    inner: Arc<dyn Fs>,
    armed: Arc<Mutex<Armed>>,
}

struct FaultyAppend {
    inner: Box<dyn AppendFile>,
    armed: Arc<Mutex<Armed>>,
}

fn lock_armed(m: &Mutex<Armed>) -> MutexGuard<'_, Armed> {
    // Plain data, changed by single assignments: usable whatever happened to a holder.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultyFs {
    pub fn new(inner: Arc<dyn Fs>) -> FaultyFs {
        FaultyFs {
            inner,
            armed: Arc::default(),
        }
    }

    /// Makes `op` fail with `fault` until [`FaultyFs::clear`].
    pub fn fail(&self, op: FsOp, fault: Fault) {
        lock_armed(&self.armed).faults.insert(op, (fault, None));
    }

    /// Makes the next `times` calls of `op` fail with `fault`.
    pub fn fail_times(&self, op: FsOp, fault: Fault, times: u32) {
        lock_armed(&self.armed)
            .faults
            .insert(op, (fault, Some(times)));
    }

    /// Every operation works again.
    pub fn clear(&self) {
        lock_armed(&self.armed).faults.clear();
    }

    /// How many faults struck so far (a test checks its fault was hit at all).
    pub fn struck(&self) -> u64 {
        lock_armed(&self.armed).struck
    }

    fn check(&self, op: FsOp) -> io::Result<()> {
        check(&self.armed, op)
    }
}

impl AppendFile for FaultyAppend {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        check(&self.armed, FsOp::Write)?;
        self.inner.append(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        check(&self.armed, FsOp::Sync)?;
        self.inner.sync()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
}

impl Fs for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>> {
        self.inner.open_read(path)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.inner.len(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        self.check(FsOp::Create)?;
        Ok(Box::new(FaultyAppend {
            inner: self.inner.open_append(path)?,
            armed: self.armed.clone(),
        }))
    }
    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.check(FsOp::Create)?;
        self.check(FsOp::Write)?;
        self.check(FsOp::Sync)?;
        self.inner.write_synced(path, data)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(FsOp::SyncDir)?;
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path, pid: u32) -> Result<Box<dyn LockGuard>, LockFailure> {
        self.inner.lock(path, pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_power_cut_keeps_synced_bytes_and_tears_the_rest() {
        let fs = SimFs::new();
        let dir = Path::new("/j");
        let p = dir.join("a");
        let mut f = fs.open_append(&p).unwrap();
        f.append(b"hello").unwrap();
        f.sync().unwrap();
        fs.sync_dir(dir).unwrap();
        f.append(b" world").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        fs.power_cut(&mut rng);
        assert!(fs.read(&p).is_err(), "the old boot is dead");
        let after = fs.boot().read(&p).unwrap();
        assert!(after.starts_with(b"hello") && b"hello world".starts_with(&after));
        assert!(f.append(b"x").is_err(), "old handles are dead");
    }

    #[test]
    fn an_unsynced_directory_entry_vanishes_in_a_power_cut() {
        let fs = SimFs::new();
        fs.write_synced(Path::new("/j/x"), b"1").unwrap();
        fs.power_cut(&mut rand::rngs::StdRng::seed_from_u64(2));
        assert!(fs.boot().read(Path::new("/j/x")).is_err());
    }
}
