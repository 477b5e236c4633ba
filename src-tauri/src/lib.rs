//! vrs-tablet is the Tauri 2 app: thin commands over `vrs-client` and events to the UI.
//!
//! Not built yet: the tablet-app issue fills this crate and adds the `tauri`
//! dependency. It is the only crate that may depend on Tauri.
