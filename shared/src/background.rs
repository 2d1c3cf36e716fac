//! Threads that work behind the requests (the admin queries that read a whole domain, and the
//! store's reads for them) run at the lowest priority: a thread serving a request always gets a
//! core first, and they have what the requests leave.

/// The nice value of a background thread: the lowest there is.
const LOWEST_NICE: i32 = 19;

/// Lowers the calling thread, and only it, to the lowest priority: Linux's `SCHED_IDLE` policy,
/// under which a waking request thread takes the core at once (the scheduler counts a core that
/// runs only such threads as idle), and nice 19 where that policy is not available. On Linux
/// both are the thread's own; elsewhere this does nothing. A thread cannot raise its priority
/// again without privileges: call this on a thread that does background work only.
pub fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: `who` and `pid` 0 name the calling thread; `param` outlives the call.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, LOWEST_NICE);
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// The calling thread's scheduling policy and nice value.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn this_threads_priority() -> (i32, i32) {
    // SAFETY: as above.
    unsafe { (libc::sched_getscheduler(0), libc::getpriority(libc::PRIO_PROCESS, 0)) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn only_the_thread_that_asks_is_lowered() {
        let before = this_threads_priority();
        let lowered = std::thread::spawn(|| {
            lower_this_threads_priority();
            this_threads_priority()
        });
        assert_eq!(lowered.join().unwrap(), (libc::SCHED_IDLE, LOWEST_NICE));
        assert_eq!(this_threads_priority(), before, "the caller's thread keeps its priority");
    }
}
