//! Threads that work behind the requests (the admin queries that read a whole domain, and the
//! store's reads for them) run at the lowest priority: a thread serving a request always gets a
//! core first, and they have what the requests leave.

/// The nice value of a background thread: the lowest priority there is.
const LOWEST: i32 = 19;

/// Lowers the calling thread, and only it, to the lowest priority. On Linux a thread's nice value
/// is its own; elsewhere this does nothing. (A thread cannot raise its priority again without
/// privileges: call this on a thread that does background work only.)
pub fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: no pointer is passed; `who` 0 names the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, LOWEST);
    }
}

/// The calling thread's nice value.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn this_threads_nice() -> i32 {
    // SAFETY: as above; -1 is also a valid answer, and the tests compare with 19 or 0.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn only_the_thread_that_asks_is_lowered() {
        let before = this_threads_nice();
        let lowered = std::thread::spawn(|| {
            lower_this_threads_priority();
            this_threads_nice()
        });
        assert_eq!(lowered.join().unwrap(), LOWEST);
        assert_eq!(this_threads_nice(), before, "the caller's thread keeps its priority");
    }
}
