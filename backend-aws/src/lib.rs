//! backend-aws: not written yet (see its issue).
