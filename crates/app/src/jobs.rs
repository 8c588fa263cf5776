//! The background work a running server owns: following the change feed into the search
//! index, queueing follow-up reminders, and sending what the outbox holds.
//!
//! [`Jobs::start`] runs each job on its own schedule; [`Jobs::stop`] asks them to stop
//! and waits for the round each is in the middle of (a message half-sent is sent and
//! marked so) up to a bound. A job is never cut off mid-round unless the bound runs out.

use crate::App;
use crate::notify::Senders;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How often each job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Reading the change feed for edits made elsewhere (another instance, `kith import`).
    pub follow_feed: Duration,
    /// Queueing reminders and sending what the outbox holds.
    pub outbox: Duration,
    /// Looking for directory feeds due a pull.
    pub feeds: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule { follow_feed: Duration::from_secs(1), outbox: Duration::from_secs(2), feeds: Duration::from_secs(60) }
    }
}

/// The running jobs. Dropping this without [`stop`](Self::stop) aborts them.
#[derive(Debug)]
pub struct Jobs {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Jobs {
    /// Starts every job on `schedule`, sending messages through `senders`.
    pub fn start(app: &App, senders: Senders, schedule: Schedule) -> Jobs {
        let (stop, stopping) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let follower = app.clone();
        tasks.spawn(every(schedule.follow_feed, stopping.clone(), move || {
            let app = follower.clone();
            async move { app.catch_up().await }
        }));
        // Reminders then the outbox; the same round tests run with `run_round`.
        let messenger = app.clone();
        let senders = std::sync::Arc::new(senders);
        let puller = app.clone();
        tasks.spawn(every(schedule.feeds, stopping.clone(), move || {
            let app = puller.clone();
            async move {
                pull_round(&app).await;
            }
        }));
        tasks.spawn(every(schedule.outbox, stopping, move || {
            let app = messenger.clone();
            let senders = senders.clone();
            async move {
                if let Err(e) = send_round(&app, &senders).await {
                    tracing::warn!(error = %e, "the outbox could not be worked through; trying again shortly");
                }
            }
        }));
        Jobs { tasks, stop }
    }

    /// Asks every job to stop once its current round is done and waits up to `grace` for
    /// them. Returns `false` if some were still running at the end and were cut off.
    pub async fn stop(mut self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        let finished = tokio::time::timeout(grace, async { while self.tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!(
                left = self.tasks.len(),
                "background jobs still running at the end of shutdown were cut off"
            );
            self.tasks.abort_all();
            return false;
        }
        true
    }
}

/// Runs `round` now and then every `period` until asked to stop; a round under way is
/// finished first.
async fn every<F, Fut>(period: Duration, mut stopping: watch::Receiver<bool>, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if *stopping.borrow() {
            return;
        }
        round().await;
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            changed = stopping.changed() => if changed.is_err() || *stopping.borrow() { return },
        }
    }
}

/// Reminders first, so that those due now go out in the same round.
/// Pulls the directory feeds that are due; a feed another instance is pulling is left
/// to it. Returns how many were pulled.
async fn pull_round(app: &App) -> usize {
    let pulled = match app.feeds() {
        Ok(feeds) => feeds.pull_due().await,
        Err(e) => Err(e),
    };
    app.metrics.job("pull_feeds", pulled.is_ok());
    pulled.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "directory feeds could not be pulled; trying again shortly");
        0
    })
}

async fn send_round(app: &App, senders: &Senders) -> Result<(usize, usize), crate::referrals::ReferralError> {
    let sent = async {
        let reminders = app.referrals().send_reminders().await?;
        let sent = app.outbox().deliver_due(senders).await?;
        Ok((reminders, sent))
    }
    .await;
    app.metrics.job("send_messages", sent.is_ok());
    sent
}

/// What one round of every job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Round {
    /// Follow-up reminders queued.
    pub reminders: usize,
    /// Messages sent from the outbox.
    pub sent: usize,
    /// Directory feeds pulled.
    pub feeds: usize,
}

/// One round of every job, in the order the runner keeps: the search index follows the
/// change feed, then reminders are queued and the outbox worked through. A failure is
/// logged, as the runner logs it, and the round reports what it managed.
pub async fn run_round(app: &App, senders: &Senders) -> Round {
    app.catch_up().await;
    let feeds = pull_round(app).await;
    match send_round(app, senders).await {
        Ok((reminders, sent)) => Round { reminders, sent, feeds },
        Err(e) => {
            tracing::warn!(error = %e, "the outbox could not be worked through");
            Round { feeds, ..Round::default() }
        }
    }
}
