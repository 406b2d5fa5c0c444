//! Why connections are turned away or ended: one enum per kind, one spelling per cause, the
//! same in the log, in `natterctl stats` and in `natterctl watch`.

/// Why a connection (or a login) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address is banned.
    Banned,
    /// The nickname it chose is banned.
    BannedNick,
    /// Its address opened too many connections in the last minute.
    ConnectRate,
    /// `max_clients` connections are open.
    ServerFull,
    /// `max_clients_per_ip` connections are open from its address.
    TooManyFromAddress,
    /// A trusted proxy sent no valid PROXY header in time.
    BadProxyHeader,
    /// A PROXY header came from an address `[server] proxy_protocol` does not trust.
    UntrustedProxy,
}

impl Refused {
    /// Every cause, in the order `stats` lists them.
    pub const ALL: [Refused; 7] = [
        Refused::Banned,
        Refused::BannedNick,
        Refused::ConnectRate,
        Refused::ServerFull,
        Refused::TooManyFromAddress,
        Refused::BadProxyHeader,
        Refused::UntrustedProxy,
    ];

    /// The cause's one spelling.
    pub fn name(self) -> &'static str {
        match self {
            Refused::Banned => "banned",
            Refused::BannedNick => "banned_nick",
            Refused::ConnectRate => "connect_rate",
            Refused::ServerFull => "server_full",
            Refused::TooManyFromAddress => "too_many_from_address",
            Refused::BadProxyHeader => "bad_proxy_header",
            Refused::UntrustedProxy => "untrusted_proxy",
        }
    }
}

/// Why the server ended a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// A line that had to arrive did not fit in its send queue.
    SendQueueFull,
    /// It accepted no output for `write_timeout`.
    WriteTimeout,
    /// It chose no nickname within `login_timeout`.
    LoginTimeout,
    /// It sent nothing for `idle_timeout`.
    IdleTimeout,
}

impl Dropped {
    /// Every cause, in the order `stats` lists them.
    pub const ALL: [Dropped; 4] = [
        Dropped::IdleTimeout,
        Dropped::LoginTimeout,
        Dropped::SendQueueFull,
        Dropped::WriteTimeout,
    ];

    /// The cause's one spelling.
    pub fn name(self) -> &'static str {
        match self {
            Dropped::SendQueueFull => "send_queue_full",
            Dropped::WriteTimeout => "write_timeout",
            Dropped::LoginTimeout => "login_timeout",
            Dropped::IdleTimeout => "idle_timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_is_listed_once_with_its_own_name() {
        let mut names: Vec<&str> = Refused::ALL.iter().map(|c| c.name()).collect();
        names.extend(Dropped::ALL.iter().map(|c| c.name()));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }
}
