//! What every handler shares.

use std::sync::Arc;

use crate::ratelimit::NameLimits;
use crate::store::Store;

/// Shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Per-tablet limits on the name look-up.
    pub names: Arc<NameLimits>,
    /// Where sign-in passcodes are sent.
    pub mailer: Arc<crate::mail::Mailer>,
    /// Session cookies carry `Secure` (the service speaks TLS).
    pub secure_cookies: bool,
    /// Uploads in progress that a page follows.
    pub uploads: Arc<super::progress::Uploads>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, mailer: crate::mail::Mailer) -> Self {
        AppState {
            store,
            names: Arc::new(NameLimits::default()),
            mailer: Arc::new(mailer),
            secure_cookies: false,
            uploads: Arc::default(),
        }
    }
}
