//! natter: a plain-text chat server for telnet and netcat clients.
//!
//! A chat line travels through these modules in order:
//!
//! - [`server`] accepts TCP connections and starts one [`session`] task for each.
//! - [`codec`] turns the socket's bytes into raw lines, handling telnet commands.
//! - [`sanitize`] turns a raw line into text that is safe to show on anyone's terminal.
//! - [`command`] says what the line means; [`nick`] checks nicknames.
//! - [`hub`] holds who is online and fans lines out to their [`outbox`]es, built by
//!   [`format`].
//!
//! Around them: [`config`] reads natter.toml; [`daemon`] holds what the whole server shares
//! (the configuration, counters, reload, the shutdown switch, moderation actions);
//! [`moderation`] keeps bans and mutes; [`events`] streams what happens to `natterctl watch`;
//! [`admin`] serves natterctl over a Unix socket; [`signals`] maps SIGTERM/SIGINT/SIGHUP onto
//! shutdown and reload; [`stats`] counts, by the causes in [`cause`]; [`logging`] and
//! [`logfile`] write events, [`log_gate`] bounds what clients can make them write;
//! [`limits`], [`flood`] and [`pace`] bound what one connection or address may do; [`dirs`]
//! finds and creates natterd's directories; [`systemd`] speaks sd_notify and socket
//! activation. The binaries `natterd`, `natterctl` and `natter-bench` are thin wrappers
//! (natter-bench, the load generator, is not part of the library).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod cause;
pub mod cluster;
pub mod codec;
pub mod command;
pub mod config;
pub mod daemon;
pub mod dirs;
pub mod events;
pub mod flood;
pub mod format;
pub mod hub;
pub mod limits;
pub mod log_gate;
pub mod logfile;
pub mod logging;
pub mod metrics;
pub mod moderation;
pub mod nick;
pub mod outbox;
pub mod pace;
pub mod proxy;
pub mod sanitize;
pub mod server;
pub mod session;
pub mod signals;
pub mod stats;
pub mod systemd;
pub mod tls;
