//! A real OpenBao dev server for the vault backend's tests (written with
//! the vault backend).
