//! The bound on the audit rows of refused calls: a flood of bad tokens (or of calls a role may
//! not make) must not fill the database. Each (method, outcome) may record a number of
//! refusals per window; the rest are counted, and one summarising event ("N refusals
//! suppressed", with the count in `suppressed`) is written when the window has ended — by the
//! next refusal of that key that is recorded, by the periodic sweep, or at shutdown.
//!
//! Hand-written rather than with `governor`: a rate limiter answers "admit or not", but the
//! audit log also needs how many were not admitted per window and when that window ended, to
//! write the summary — a fixed-window counter per key, a few lines, gives both.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use zonerank_storage::{AuditEvent, Store};

/// The length of one window of the refusal budget.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The method under which refusals of paths no zonerank service has are counted.
pub const UNKNOWN_METHOD: &str = "(unknown method)";

/// Refusals of one (method, outcome) recorded per window by default.
pub const DEFAULT_PER_WINDOW: u32 = 60;

/// How many refusals of each (method, outcome) are recorded per window; 0 records all.
#[derive(Debug)]
pub struct RefusalBudget {
    per_window: u32,
    window: Duration,
    windows: Mutex<HashMap<(String, String), Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    recorded: u32,
    suppressed: i64,
    /// The principal of the suppressed calls, while they all had one.
    principal: Option<String>,
    several: bool,
}

impl Window {
    fn new(started: Instant) -> Window {
        Window {
            started,
            recorded: 0,
            suppressed: 0,
            principal: None,
            several: false,
        }
    }

    /// The summary of the suppressed calls of `key`, if any.
    fn summary(&self, (method, outcome): &(String, String)) -> Option<AuditEvent> {
        if self.suppressed == 0 {
            return None;
        }
        let principal = match (&self.principal, self.several) {
            (Some(principal), false) => principal.as_str(),
            _ => "(several)",
        };
        let mut event = AuditEvent::new(principal, method, outcome, "");
        event.message = format!(
            "{} refusals suppressed beyond the {} recorded in their window",
            self.suppressed, self.recorded
        );
        event.suppressed = self.suppressed;
        Some(event)
    }
}

impl RefusalBudget {
    /// `per_window` refusals of each (method, outcome) recorded per `window`; 0 records all.
    pub fn new(per_window: u32, window: Duration) -> RefusalBudget {
        RefusalBudget {
            per_window,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Window>> {
        // A panic while counting leaves counts that are still counts.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The events to record for the refusal `event` at `now`: the summary of the key's ended
    /// window (if it suppressed any) and the event itself; nothing when it is suppressed.
    pub fn admit(&self, event: AuditEvent, now: Instant) -> Vec<AuditEvent> {
        if self.per_window == 0 {
            return vec![event];
        }
        // Keyed by known methods only: a caller choosing a new path for every call must not
        // get a new budget for each.
        let method = if crate::auth::is_known_method(&event.method) {
            event.method.clone()
        } else {
            UNKNOWN_METHOD.to_string()
        };
        let key = (method, event.outcome.clone());
        let mut windows = self.windows();
        let window = windows
            .entry(key.clone())
            .or_insert_with(|| Window::new(now));
        let mut out = Vec::new();
        if now.duration_since(window.started) >= self.window {
            out.extend(window.summary(&key));
            *window = Window::new(now);
        }
        if window.recorded < self.per_window {
            window.recorded += 1;
            out.push(event);
        } else {
            window.suppressed += 1;
            match &window.principal {
                None if !window.several => window.principal = Some(event.principal),
                Some(p) if *p != event.principal => {
                    window.several = true;
                    window.principal = None;
                }
                _ => {}
            }
        }
        out
    }

    /// The summaries of the windows that ended by `now` (every window when `all`), which are
    /// forgotten.
    pub fn ended(&self, now: Instant, all: bool) -> Vec<AuditEvent> {
        let mut windows = self.windows();
        let mut out = Vec::new();
        windows.retain(|key, window| {
            let over = all || now.duration_since(window.started) >= self.window;
            if over {
                out.extend(window.summary(key));
            }
            !over
        });
        out
    }
}

/// Where the guard records refused calls and failed writes: the store, behind the process's
/// refusal budget.
#[derive(Clone, Debug)]
pub struct RefusalLog {
    store: Store,
    budget: Arc<RefusalBudget>,
}

impl RefusalLog {
    pub fn new(store: Store, budget: Arc<RefusalBudget>) -> RefusalLog {
        RefusalLog { store, budget }
    }

    /// Records `event` of a call that ended with `code`: a refusal of the caller within the
    /// budget (with the summary of an ended window first), every failed write.
    pub async fn record(&self, event: AuditEvent, code: tonic::Code) {
        let events = if matches!(
            code,
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ) {
            self.budget.admit(event, Instant::now())
        } else {
            vec![event]
        };
        self.insert(events).await;
    }

    /// Writes the summaries of ended windows (every window when `all`, at shutdown).
    pub async fn sweep(&self, all: bool) {
        let summaries = self.budget.ended(Instant::now(), all);
        self.insert(summaries).await;
    }

    async fn insert(&self, events: Vec<AuditEvent>) {
        for event in events {
            if let Err(e) = self.store.record_refusal(&event).await {
                tracing::warn!(error = %e, method = %event.method, "the audit event of a refused call was not recorded");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(principal: &str) -> AuditEvent {
        AuditEvent::new(
            principal,
            "/zonerank.v1.IngestionService/ImportCsv",
            "UNAUTHENTICATED",
            "",
        )
    }

    #[test]
    fn beyond_the_budget_refusals_are_counted_and_summarised_once_the_window_ends() {
        let budget = RefusalBudget::new(3, WINDOW);
        let start = Instant::now();
        let recorded: usize = (0..10)
            .map(|_| budget.admit(refusal("anonymous"), start).len())
            .sum();
        assert_eq!(recorded, 3);
        // Another outcome has its own budget.
        let mut denied = refusal("reader");
        denied.outcome = "PERMISSION_DENIED".into();
        assert_eq!(budget.admit(denied, start).len(), 1);
        assert!(budget.ended(start + WINDOW / 2, false).is_empty());

        // The next window: the summary of the seven, then the refusal itself.
        let next = budget.admit(refusal("anonymous"), start + WINDOW);
        assert_eq!(next.len(), 2);
        assert_eq!(next[0].suppressed, 7);
        assert_eq!(next[0].principal, "anonymous");
        assert_eq!(next[0].outcome, "UNAUTHENTICATED");
        assert!(next[0].message.starts_with("7 refusals suppressed"));
        assert_eq!(next[1].suppressed, 0);
    }

    #[test]
    fn the_sweep_summarises_ended_windows_and_shutdown_every_one() {
        let budget = RefusalBudget::new(1, WINDOW);
        let start = Instant::now();
        for principal in ["a", "b", "c"] {
            budget.admit(refusal(principal), start);
        }
        assert!(budget.ended(start, false).is_empty());
        let all = budget.ended(start, true);
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].suppressed, all[0].principal.as_str()),
            (2, "(several)")
        );
        assert!(budget.ended(start + 2 * WINDOW, true).is_empty());

        budget.admit(refusal("a"), start);
        budget.admit(refusal("a"), start);
        let ended = budget.ended(start + WINDOW, false);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].suppressed, 1);
    }

    #[test]
    fn made_up_methods_share_one_budget() {
        let budget = RefusalBudget::new(2, WINDOW);
        let start = Instant::now();
        let recorded: usize = (0..50)
            .map(|i| {
                let mut event = refusal("anonymous");
                event.method = format!("/zonerank.v1.IngestionService/Made{i}");
                budget.admit(event, start).len()
            })
            .sum();
        assert_eq!(recorded, 2);
        let summary = budget.ended(start, true);
        assert_eq!(summary[0].method, UNKNOWN_METHOD);
        assert_eq!(summary[0].suppressed, 48);
    }

    #[test]
    fn a_budget_of_zero_records_every_refusal() {
        let budget = RefusalBudget::new(0, WINDOW);
        let start = Instant::now();
        assert!((0..100).all(|_| budget.admit(refusal("x"), start).len() == 1));
        assert!(budget.ended(start, true).is_empty());
    }
}
