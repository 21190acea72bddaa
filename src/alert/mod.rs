//! Alerts: the per-instance state machine (`state`), pure; the scheduler, store and API that
//! drive it build on it.

pub mod dispatch;
pub mod routing;
pub mod silence;
pub mod state;
pub mod window;
