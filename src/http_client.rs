//! The one way perfwatch makes an HTTP client (notifiers, heartbeat, CLI, load generator):
//! rustls over *ring*, the crypto library perfwatch already signs acknowledge links with, so
//! no second one (aws-lc, which builds a large C library) is compiled in. *ring* is installed
//! as the process's default rustls provider the first time, which the mail transport uses too.

use std::sync::Once;

/// perfwatch's `User-Agent`.
pub const USER_AGENT: &str = concat!("perfwatch/", env!("CARGO_PKG_VERSION"));

/// A client builder with rustls over *ring* ready.
pub fn builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().user_agent(USER_AGENT)
}

/// A client with the defaults, as `reqwest::Client::new()` gives.
pub fn client() -> reqwest::Client {
    // Building fails only when the TLS backend cannot start, which *ring* always can.
    builder().build().expect("an HTTP client over rustls and ring builds")
}

/// Makes *ring* the process's default rustls provider (once; a provider someone else
/// installed first is kept).
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
    });
}
