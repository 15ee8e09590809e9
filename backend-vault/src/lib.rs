//! backend-vault: not written yet (see its issue).
