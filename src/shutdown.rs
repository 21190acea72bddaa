//! Signals: SIGINT (Ctrl-C) and SIGTERM (systemd, kill) stop the daemon; SIGHUP reloads rules.

/// Completes on the first SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on unix");
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Reloads rules on every SIGHUP until `cancel`.
pub async fn reload_on_sighup(reloader: crate::rules::reload::Reloader, cancel: tokio_util::sync::CancellationToken) {
    #[cfg(unix)]
    {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload rules with POST /-/reload");
            // Not a failure of this task: it simply has nothing to do until the end.
            cancel.cancelled().await;
            return;
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP received; reloading rules");
                    crate::systemd::reloading();
                    let _ = reloader.reload().await;
                    // Ready again either way: a bad rule file leaves the running rules in place.
                    crate::systemd::ready("serving; rules reloaded");
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reloader;
        cancel.cancelled().await;
    }
}
