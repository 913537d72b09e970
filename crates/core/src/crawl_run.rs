//! Website crawler runs, with the lifecycle of an Apify actor run.

use crate::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Ready,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborting,
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ready => "READY",
            RunStatus::Running => "RUNNING",
            RunStatus::Succeeded => "SUCCEEDED",
            RunStatus::Failed => "FAILED",
            RunStatus::TimedOut => "TIMED-OUT",
            RunStatus::Aborting => "ABORTING",
            RunStatus::Aborted => "ABORTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "READY" => RunStatus::Ready,
            "RUNNING" => RunStatus::Running,
            "SUCCEEDED" => RunStatus::Succeeded,
            "FAILED" => RunStatus::Failed,
            "TIMED-OUT" => RunStatus::TimedOut,
            "ABORTING" => RunStatus::Aborting,
            "ABORTED" => RunStatus::Aborted,
            _ => return None,
        })
    }

    /// Whether the run has ended (no more items will come).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::TimedOut | RunStatus::Aborted
        )
    }
}

/// Which runs a run list keeps: those in `statuses` (any when empty) started
/// within `started_after ..= started_before` (either end open when unset), and
/// with `with_dataset` (`with_kv_store`) only those whose dataset (key-value
/// store) has not been deleted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub statuses: Vec<RunStatus>,
    pub started_after: Option<Millis>,
    pub started_before: Option<Millis>,
    pub with_dataset: bool,
    pub with_kv_store: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrawlRun {
    pub id: String,
    pub workspace_id: String,
    pub actor_id: String,
    pub status: RunStatus,
    pub status_message: Option<String>,
    pub input: serde_json::Value,
    pub dataset_id: String,
    pub timeout_secs: i64,
    pub pages_done: i64,
    pub pages_failed: i64,
    pub items: i64,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    /// The run's default key-value store (its `INPUT` record is the input).
    pub kv_store_id: String,
    /// Apify's ad-hoc webhooks given at its start.
    pub webhooks: Vec<crate::run_webhook::RunWebhook>,
    /// When its dataset, or its key-value store, was deleted on its own (the run
    /// stays, the store reads as gone).
    pub dataset_deleted_at: Option<Millis>,
    pub kv_store_deleted_at: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_know_when_they_end() {
        for s in [
            RunStatus::Ready,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::TimedOut,
            RunStatus::Aborting,
            RunStatus::Aborted,
        ] {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
        assert!(RunStatus::TimedOut.is_terminal());
        assert!(!RunStatus::Aborting.is_terminal());
        assert_eq!(RunStatus::parse("DONE"), None);
    }
}
