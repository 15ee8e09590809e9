//! A real moto server for the aws backend's tests (written with the aws
//! backend).
