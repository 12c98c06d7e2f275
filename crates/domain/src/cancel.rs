//! Stopping long computations from outside: the caller holds a [`Cancel`] and sets it; the
//! computation polls it every few hundred samples or engine runs and gives up with
//! [`Cancelled`]. A relaxed atomic load per poll, so the check costs nothing measurable.

use std::sync::atomic::{AtomicBool, Ordering};

/// A flag a computation polls to learn it should stop.
#[derive(Debug, Default)]
pub struct Cancel(AtomicBool);

/// The computation stopped because its [`Cancel`] was set; it has no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the computation was cancelled")]
pub struct Cancelled;

/// A flag nobody sets, for the computations run without a caller who can go away.
pub static NEVER: Cancel = Cancel::new();

impl Cancel {
    /// A flag not yet set.
    pub const fn new() -> Cancel {
        Cancel(AtomicBool::new(false))
    }

    /// Asks the computations polling this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the flag is set.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_once_stays_set() {
        let flag = Cancel::new();
        assert_eq!(flag.check(), Ok(()));
        flag.cancel();
        assert!(flag.is_cancelled());
        assert_eq!(flag.check(), Err(Cancelled));
        assert_eq!(NEVER.check(), Ok(()));
    }
}
