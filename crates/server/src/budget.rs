//! What one call may use. Every expensive call has a budget here, checked before the work
//! starts and refused with RESOURCE_EXHAUSTED (`google.rpc.QuotaFailure` names the budget and
//! the message gives the numbers); and every long call runs under a [`Call`], which stops its
//! CPU work when the client's deadline or [`MAX_CALL`] passes (DEADLINE_EXCEEDED) or when the
//! client goes away. README.md lists these numbers under "Limits"; keep the two in step.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::Request;
use zonerank_api::v1;
use zonerank_domain::cancel::{Cancel, Cancelled};

use crate::error::ServiceError;

/// GetRankRobustness: samples × ranked entities, a bound on time (the engine bounds its own
/// memory: drawn ranks are bit-packed and held at most 640 MiB at a time). A draw costs about
/// 40 ns of CPU at 10 criteria in a release build: 1,000 samples of 10,000 entities fit,
/// 100,000 samples of 5,060 entities (20 s of CPU) do not.
pub const MAX_ROBUSTNESS_DRAWS: usize = 10_000_000;

/// ComputeMetrics and StreamMetrics: expressions in one request.
pub const MAX_METRIC_EXPRESSIONS: usize = 100;

/// ComputeMetrics and StreamMetrics (and the tables a ranking reads through them):
/// expressions × periods × cohort entities. A cell costs a few µs, so the budget is a few
/// seconds of CPU and an answer of about 20 MB. A server started with `--max-metric-cells`
/// uses that instead.
pub const MAX_METRIC_CELLS: usize = 1_000_000;

/// A scheme's criteria (CreateScheme, SimulateRanking, and every stored scheme run).
pub const MAX_CRITERIA: usize = 50;
/// A scheme's star rules (levels run 1–6, so more can only repeat a level).
pub const MAX_STAR_RULES: usize = 6;
/// Gates of one star rule.
pub const MAX_GATES_PER_RULE: usize = 20;
/// A scheme's class cuts.
pub const MAX_CLASS_CUTS: usize = 20;
/// A scheme's bonus and deduction adjustments.
pub const MAX_ADJUSTMENTS: usize = 100;
/// A scheme's vetoes.
pub const MAX_VETOES: usize = 100;

/// ComputeRanking and SimulateRanking: entities in the cohort ranked, unless the server is
/// started with another (`--max-ranking-entities`).
pub const MAX_RANKING_ENTITIES: usize = 200_000;

/// ExplainRanking: ranked entities × criteria. The search re-runs the whole ranking up to 80
/// times per criterion, and never fewer than 8: at the budget (100,000 entities × 5 criteria)
/// one explanation takes about 4 s in a release build; 500,000 × 5 would take 20 s.
pub const MAX_EXPLAIN_WORK: usize = 500_000;

/// The longest any call runs when its client sets no shorter deadline, unless the server is
/// started with another (`--max-call-secs`).
pub const MAX_CALL: Duration = Duration::from_secs(60);

/// The server's longest call in seconds, as configured: one setting for the whole process.
static MAX_CALL_SECS: AtomicU64 = AtomicU64::new(MAX_CALL.as_secs());

/// Sets the longest call of every service in this process (at least 1 s).
pub fn set_max_call(max: Duration) {
    MAX_CALL_SECS.store(max.as_secs().max(1), Ordering::Relaxed);
}

fn max_call() -> Duration {
    Duration::from_secs(MAX_CALL_SECS.load(Ordering::Relaxed))
}

/// The cohort and metric-cell budgets as configured (a national deployment raises them with
/// its measurements): one setting for the whole process, like the longest call.
static RANKING_ENTITIES: AtomicUsize = AtomicUsize::new(MAX_RANKING_ENTITIES);
static METRIC_CELLS: AtomicUsize = AtomicUsize::new(MAX_METRIC_CELLS);

/// Sets the ranking cohort and metric-cell budgets of every service in this process.
pub fn set_sizes(ranking_entities: usize, metric_cells: usize) {
    RANKING_ENTITIES.store(ranking_entities, Ordering::Relaxed);
    METRIC_CELLS.store(metric_cells, Ordering::Relaxed);
}

/// RESOURCE_EXHAUSTED for `subject` = `used`, over `budget`, with what to do instead.
fn exceeded(subject: &str, used: usize, budget: usize, advice: &str) -> ServiceError {
    ServiceError::ResourceExhausted {
        subject: subject.to_string(),
        message: format!(
            "{subject} = {} exceeds the budget of {}; {advice}",
            thousands(used),
            thousands(budget)
        ),
    }
}

/// `used` within `budget`, or RESOURCE_EXHAUSTED.
fn within(subject: &str, used: usize, budget: usize, advice: &str) -> Result<(), ServiceError> {
    if used > budget {
        Err(exceeded(subject, used, budget, advice))
    } else {
        Ok(())
    }
}

/// 5060000 as `5,060,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// GetRankRobustness over `entities` ranked entities.
pub fn robustness(samples: usize, entities: usize) -> Result<(), ServiceError> {
    let most = MAX_ROBUSTNESS_DRAWS / entities.max(1);
    within(
        "samples × entities",
        samples.saturating_mul(entities),
        MAX_ROBUSTNESS_DRAWS,
        &format!(
            "ask for fewer samples (at most {} for this run)",
            thousands(most)
        ),
    )
}

/// The number of expressions of one metrics request.
pub fn metric_expressions(expressions: usize) -> Result<(), ServiceError> {
    within(
        "expressions",
        expressions,
        MAX_METRIC_EXPRESSIONS,
        "split the request",
    )
}

/// A metrics computation over `entities` cohort members.
pub fn metric_cells(
    expressions: usize,
    periods: usize,
    entities: usize,
) -> Result<(), ServiceError> {
    within(
        "expressions × cohort entities",
        expressions.saturating_mul(periods).saturating_mul(entities),
        METRIC_CELLS.load(Ordering::Relaxed),
        "ask for fewer expressions or a narrower cohort",
    )
}

/// The sizes of a scheme's lists; `prefix` names the scheme's field, e.g. `scheme`.
pub fn scheme(prefix: &str, wire: &v1::Scheme) -> Result<(), ServiceError> {
    let lists = [
        ("criteria", wire.criteria.len(), MAX_CRITERIA),
        ("star_rules", wire.star_rules.len(), MAX_STAR_RULES),
        ("class_cuts", wire.class_cuts.len(), MAX_CLASS_CUTS),
        ("adjustments", wire.adjustments.len(), MAX_ADJUSTMENTS),
        ("vetoes", wire.vetoes.len(), MAX_VETOES),
    ];
    for (field, used, budget) in lists {
        within(
            &format!("{prefix}.{field}"),
            used,
            budget,
            "a scheme this large is not ranked",
        )?;
    }
    for (i, rule) in wire.star_rules.iter().enumerate() {
        within(
            &format!("{prefix}.star_rules[{i}].gates"),
            rule.gates.len(),
            MAX_GATES_PER_RULE,
            "a scheme this large is not ranked",
        )?;
    }
    Ok(())
}

/// ComputeRanking or SimulateRanking over `entities` cohort members.
pub fn ranking_cohort(entities: usize) -> Result<(), ServiceError> {
    within(
        "cohort entities",
        entities,
        RANKING_ENTITIES.load(Ordering::Relaxed),
        "rank a narrower cohort (a region, a zone kind or tags)",
    )
}

/// ExplainRanking of a run over `entities` ranked entities and `criteria` criteria.
pub fn explain(entities: usize, criteria: usize) -> Result<(), ServiceError> {
    within(
        "entities × criteria",
        entities.saturating_mul(criteria),
        MAX_EXPLAIN_WORK,
        "explain a run over a narrower cohort",
    )
}

/// One call's time limit and cancellation. Created when the handler starts and held by its
/// future: dropping it (tonic drops the future when the client resets the stream or goes
/// away, or its `grpc-timeout` passes) sets the flag the domain's long loops poll.
#[derive(Debug)]
pub struct Call {
    deadline: tokio::time::Instant,
    cancel: Arc<Cancel>,
}

impl Call {
    /// The call `request` starts, its deadline the client's `grpc-timeout` or the server's
    /// longest call ([`MAX_CALL`] unless configured), whichever is sooner.
    pub fn start<T>(request: &Request<T>) -> Call {
        Call::within_time(client_timeout(request), max_call())
    }

    /// Work with no client behind it, bounded by the server's longest call alone.
    pub fn server_max() -> Call {
        Call::within_time(None, max_call())
    }

    /// A call with the client's `timeout` (if any) under the server's `max`.
    fn within_time(timeout: Option<Duration>, max: Duration) -> Call {
        // tonic's own timer drops the handler exactly at the client's deadline and answers
        // CANCELLED, so the handler stops a little earlier to answer DEADLINE_EXCEEDED itself.
        let limit = match timeout {
            Some(t) => max.min(t.saturating_sub((t / 10).clamp(MIN_MARGIN, MAX_MARGIN))),
            None => max,
        };
        Call {
            deadline: tokio::time::Instant::from_std(Instant::now() + limit),
            cancel: Arc::new(Cancel::new()),
        }
    }

    /// The flag this call's work polls.
    pub fn cancel(&self) -> &Arc<Cancel> {
        &self.cancel
    }

    /// `work` unless the deadline passes first: then the flag is set and the call answers
    /// DEADLINE_EXCEEDED.
    pub async fn run<R>(
        &self,
        work: impl Future<Output = Result<R, ServiceError>>,
    ) -> Result<R, ServiceError> {
        match tokio::time::timeout_at(self.deadline, work).await {
            Ok(done) => done,
            Err(_) => {
                self.cancel.cancel();
                Err(self.past_deadline())
            }
        }
    }

    /// CPU work off the async workers, stopped at the deadline (or when the call is dropped)
    /// through the flag it is given.
    pub async fn blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Cancel) -> Result<R, Cancelled> + Send + 'static,
    ) -> Result<R, ServiceError> {
        let cancel = Arc::clone(&self.cancel);
        let task = tokio::task::spawn_blocking(move || work(&cancel));
        self.run(async {
            match task.await {
                Ok(Ok(done)) => Ok(done),
                Ok(Err(Cancelled)) => Err(self.past_deadline()),
                // A panic in the work is the handler's own panic (a blocking task is only
                // cancelled by a runtime shutting down, when no answer is awaited).
                Err(failed) => std::panic::resume_unwind(failed.into_panic()),
            }
        })
        .await
    }

    fn past_deadline(&self) -> ServiceError {
        ServiceError::DeadlineExceeded(format!(
            "the call's deadline (the client's grpc-timeout or the server's {} s) passed before \
             the work was done; nothing was kept",
            max_call().as_secs()
        ))
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The least a handler answers ahead of the client's deadline.
const MIN_MARGIN: Duration = Duration::from_millis(5);
/// The most a handler answers ahead of the client's deadline.
const MAX_MARGIN: Duration = Duration::from_secs(1);

/// The client's `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n), per the gRPC
/// over HTTP/2 protocol. tonic reads it in its transport but offers no accessor to handlers.
fn client_timeout<T>(request: &Request<T>) -> Option<Duration> {
    parse_timeout(request.metadata().get("grpc-timeout")?.to_str().ok()?)
}

fn parse_timeout(text: &str) -> Option<Duration> {
    let split = text.len().checked_sub(1)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_as_grpc_writes_them() {
        assert_eq!(parse_timeout("50m"), Some(Duration::from_millis(50)));
        assert_eq!(parse_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("250u"), Some(Duration::from_micros(250)));
        assert_eq!(
            parse_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "123456789m", "5x", "-5m", "5 m", "五m"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_client_deadline_and_the_server_maximum_whichever_is_sooner() {
        let mut request = Request::new(());
        request.set_timeout(Duration::from_millis(200));
        assert_eq!(client_timeout(&request), Some(Duration::from_millis(200)));
        let left = |call: Call| call.deadline - tokio::time::Instant::now();
        let short = left(Call::within_time(
            Some(Duration::from_millis(200)),
            MAX_CALL,
        ));
        assert!(short <= Duration::from_millis(180) && short > Duration::from_millis(150));
        let capped = left(Call::within_time(Some(Duration::from_secs(3600)), MAX_CALL));
        assert!(capped <= MAX_CALL && capped > MAX_CALL - Duration::from_secs(1));
        assert!(left(Call::within_time(None, MAX_CALL)) > MAX_CALL - Duration::from_secs(1));
    }

    #[test]
    fn refusals_give_the_numbers() {
        let refused = robustness(100_000, 5060).unwrap_err().to_string();
        assert_eq!(
            refused,
            "samples × entities = 506,000,000 exceeds the budget of 10,000,000; \
             ask for fewer samples (at most 1,976 for this run)"
        );
        assert!(robustness(1000, 5060).is_ok());
        assert!(robustness(100_000, 100).is_ok());
        assert!(robustness(100_000, 101).is_err());
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
        assert!(explain(500_000, 5).is_err());
        assert!(explain(100_000, 5).is_ok());
        assert!(metric_cells(2000, 1, 5000).is_err());
        assert!(metric_expressions(2000).is_err());
        let wire = v1::Scheme {
            criteria: vec![v1::Criterion::default(); MAX_CRITERIA + 1],
            ..Default::default()
        };
        match scheme("scheme", &wire).unwrap_err() {
            ServiceError::ResourceExhausted { subject, message } => {
                assert_eq!(subject, "scheme.criteria");
                assert!(message.starts_with("scheme.criteria = 51 exceeds the budget of 50"));
            }
            other => panic!("{other:?}"),
        }
    }
}
