//! The parts of the `spotkit` binary that are pure enough to test and fuzz on their own.
//!
//! Only the configuration layer lives here: the TOML file format and the validators that turn
//! a raw value into a setting or an error naming its origin, the value and the fix. Everything
//! else (subcommands, I/O) stays in the binary.

pub mod config;
