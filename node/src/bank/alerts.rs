//! Alerts on accounts (owner) and views (viewers): rules, the notifications
//! they raise, each recorded once, and the hook that hands them on (a local
//! command or an HTTP POST to a loopback URL) so an instance can send an
//! email or a text message.
//!
//! Rules look at operations dated on or after the day the rule was added
//! (so adding a rule to an account with years of history does not raise
//! years of alerts):
//! - `large-debit AMOUNT`: a debit larger than AMOUNT;
//! - `low-balance AMOUNT`: the balance goes from at least AMOUNT to below
//!   it; it fires on the crossing, not again at every import while the
//!   balance stays low (as Cozy Banks does), and again after it recovered;
//! - `new-payee`: a label never seen on the account before (digits, such as
//!   card dates and references, are ignored in the comparison);
//! - `busy-day N`: more than N operations on one day;
//! - `foreign`: a debit made in another currency (abroad).
//!
//! A notification's id is derived from the rule and what triggered it (the
//! operation's key, the day, the crossing), so evaluating the same data
//! twice never records or hands on anything twice.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::dedup::normalize_label;
use super::model::{Amount, Date};
use crate::store::tables::{BANK_ALERT_RULES, BANK_NOTIFICATIONS};
use crate::store::{decode, encode, Store};

/// What a rule watches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RuleKind {
    /// A debit larger than `amount` (positive).
    LargeDebit {
        /// Threshold.
        amount: Amount,
    },
    /// The balance crossing below `amount`.
    LowBalance {
        /// Threshold.
        amount: Amount,
    },
    /// A payee never seen before.
    NewPayee,
    /// More than `count` operations in one day.
    BusyDay {
        /// Threshold.
        count: u32,
    },
    /// A debit in another currency.
    Foreign,
}

impl RuleKind {
    /// Parses `large-debit 500`, `low-balance 200`, `new-payee`,
    /// `busy-day 5`, `foreign`.
    pub fn parse(kind: &str, value: Option<&str>) -> Result<Self, String> {
        let amount = || -> Result<Amount, String> {
            let v = value.ok_or_else(|| format!("{kind} needs an amount, e.g. `{kind} 500`"))?;
            let a = Amount::parse(v, '.').map_err(|e| e.to_string())?;
            if a.is_negative() {
                return Err(format!("{kind} takes a positive amount"));
            }
            Ok(a)
        };
        Ok(match kind {
            "large-debit" => RuleKind::LargeDebit { amount: amount()? },
            "low-balance" => RuleKind::LowBalance { amount: amount()? },
            "new-payee" => RuleKind::NewPayee,
            "busy-day" => RuleKind::BusyDay {
                count: value
                    .ok_or("busy-day needs a number of operations, e.g. `busy-day 5`")?
                    .parse()
                    .map_err(|_| "busy-day takes a whole number".to_string())?,
            },
            "foreign" => RuleKind::Foreign,
            other => {
                return Err(format!("unknown rule {other:?}: large-debit, low-balance, new-payee, busy-day or foreign"))
            }
        })
    }

    /// The rule as `bank alerts add` takes it (`large-debit 500`).
    pub fn describe(&self) -> String {
        match self {
            RuleKind::LargeDebit { amount } => format!("large-debit {amount}"),
            RuleKind::LowBalance { amount } => format!("low-balance {amount}"),
            RuleKind::NewPayee => "new-payee".into(),
            RuleKind::BusyDay { count } => format!("busy-day {count}"),
            RuleKind::Foreign => "foreign".into(),
        }
    }
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Rule id.
    pub id: u64,
    /// `account:<id>` or `view:<hex id>`.
    pub target: String,
    /// What it watches.
    pub kind: RuleKind,
    /// Notifications say "an operation" instead of the amount.
    pub hide_amounts: bool,
    /// Only operations dated on or after this day.
    pub from: Date,
    /// Low-balance rules: the balance was below the threshold last time.
    pub below: bool,
}

/// `hearth bank alerts list` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleView {
    /// Rule id.
    pub id: u64,
    /// What the rule is on (account or view name).
    pub on: String,
    /// `account` or `view`.
    pub target_kind: String,
    /// Description.
    pub rule: String,
    /// Amounts hidden in notifications.
    pub hide_amounts: bool,
    /// Operations from this day on.
    pub from: String,
}

/// A triggered alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique id (rule + trigger).
    pub id: String,
    /// Rule id.
    pub rule: u64,
    /// Account or view name.
    pub on: String,
    /// The sentence to show.
    pub message: String,
    /// Day of the triggering operation or balance.
    pub date: String,
    /// Unix seconds when recorded.
    pub at: u64,
    /// The facts of `message`, for interfaces that say it in another
    /// language (absent in alerts recorded before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<AlertDetail>,
}

/// What an alert says, as data. Amounts are decimal text in `currency`,
/// `None` where the rule hides amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertDetail {
    /// A debit above the rule's amount.
    LargeDebit { amount: Option<String>, currency: String, label: String },
    /// A debit made in another currency.
    Foreign { amount: Option<String>, currency: String, foreign: String, label: String },
    /// The first operation with a payee.
    NewPayee { amount: Option<String>, currency: String, label: String },
    /// More operations in a day than the rule allows.
    BusyDay { count: u32, limit: u32 },
    /// The balance crossed below the rule's amount.
    LowBalance { balance: Option<String>, threshold: Option<String>, currency: String },
}

/// One alert raised by [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    /// Unique id (rule + trigger).
    pub id: String,
    /// The sentence (English).
    pub message: String,
    /// Day of the trigger.
    pub date: String,
    /// The same, as data.
    pub detail: AlertDetail,
}

/// An operation as alerts see it.
#[derive(Debug, Clone)]
pub struct AlertOp {
    /// Dedup key.
    pub key: String,
    /// Day.
    pub date: Date,
    /// Signed amount.
    pub amount: Amount,
    /// Label.
    pub label: String,
    /// Made in another currency.
    pub foreign: Option<String>,
}

/// What changed on an account or a view.
pub struct Change<'a> {
    /// `account:<id>` or `view:<hex>`.
    pub target: &'a str,
    /// Name shown in messages.
    pub name: &'a str,
    /// Currency code.
    pub currency: &'a str,
    /// Operations known before.
    pub history: &'a [AlertOp],
    /// Operations just added.
    pub added: &'a [AlertOp],
    /// Balance after the change.
    pub balance: Option<Amount>,
}

fn payee(label: &str) -> String {
    normalize_label(label).split(' ').filter(|w| !w.chars().any(|c| c.is_ascii_digit())).collect::<Vec<_>>().join(" ")
}

/// Evaluates one rule; returns each alert raised, and updates the rule's
/// crossing state.
pub fn evaluate(rule: &mut Rule, change: &Change<'_>) -> Vec<Raised> {
    let money = |a: &Amount| {
        if rule.hide_amounts {
            "an amount".to_string()
        } else {
            format!("{} {}", a.neg().display_with(2), change.currency)
        }
    };
    let hide = rule.hide_amounts;
    let shown = |a: &Amount| (!hide).then(|| a.neg().display_with(2));
    let currency = change.currency.to_owned();
    let raised = |id: String, message: String, date: String, detail: AlertDetail| Raised { id, message, date, detail };
    let relevant = change.added.iter().filter(|o| o.date >= rule.from);
    let mut out = Vec::new();
    match &rule.kind {
        RuleKind::LargeDebit { amount } => {
            for o in relevant.filter(|o| o.amount.is_negative() && o.amount.neg() > *amount) {
                out.push(raised(
                    format!("{}:{}", rule.id, o.key),
                    format!("{}: large debit of {} ({}) on {}", change.name, money(&o.amount), o.label, o.date),
                    o.date.to_string(),
                    AlertDetail::LargeDebit {
                        amount: shown(&o.amount),
                        currency: currency.clone(),
                        label: o.label.clone(),
                    },
                ));
            }
        }
        RuleKind::Foreign => {
            for o in relevant.filter(|o| o.amount.is_negative() && o.foreign.is_some()) {
                let c = o.foreign.clone().unwrap_or_default();
                out.push(raised(
                    format!("{}:{}", rule.id, o.key),
                    format!("{}: debit in {c} of {} ({}) on {}", change.name, money(&o.amount), o.label, o.date),
                    o.date.to_string(),
                    AlertDetail::Foreign {
                        amount: shown(&o.amount),
                        currency: currency.clone(),
                        foreign: c.clone(),
                        label: o.label.clone(),
                    },
                ));
            }
        }
        RuleKind::NewPayee => {
            let mut seen: BTreeSet<String> = change.history.iter().map(|o| payee(&o.label)).collect();
            let mut added: Vec<&AlertOp> = change.added.iter().collect();
            added.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.key.cmp(&b.key)));
            for o in added {
                let p = payee(&o.label);
                if seen.insert(p) && o.date >= rule.from {
                    out.push(raised(
                        format!("{}:{}", rule.id, o.key),
                        format!("{}: new payee {:?}, {} on {}", change.name, o.label, money(&o.amount), o.date),
                        o.date.to_string(),
                        AlertDetail::NewPayee {
                            amount: shown(&o.amount),
                            currency: currency.clone(),
                            label: o.label.clone(),
                        },
                    ));
                }
            }
        }
        RuleKind::BusyDay { count } => {
            let days: BTreeSet<Date> = relevant.map(|o| o.date).collect();
            let mut per_day: BTreeMap<Date, u32> = BTreeMap::new();
            for o in change.history.iter().chain(change.added) {
                if days.contains(&o.date) {
                    *per_day.entry(o.date).or_default() += 1;
                }
            }
            for (day, n) in per_day.into_iter().filter(|(_, n)| n > count) {
                out.push(raised(
                    format!("{}:day:{day}", rule.id),
                    format!("{}: {n} operations on {day} (more than {count})", change.name),
                    day.to_string(),
                    AlertDetail::BusyDay { count: n, limit: *count },
                ));
            }
        }
        RuleKind::LowBalance { amount } => {
            if let Some(balance) = change.balance {
                let below = balance < *amount;
                if below && !rule.below {
                    let shown = if rule.hide_amounts {
                        "the balance fell below the threshold".to_string()
                    } else {
                        format!("the balance fell to {} {} (below {amount})", balance.display_with(2), change.currency)
                    };
                    let last = change.added.iter().map(|o| o.date).max();
                    let day = last.map(|d| d.to_string()).unwrap_or_default();
                    let crossings = format!("{}:low:{}:{}", rule.id, day, balance);
                    let detail = AlertDetail::LowBalance {
                        balance: (!hide).then(|| balance.display_with(2)),
                        threshold: (!hide).then(|| amount.to_string()),
                        currency: currency.clone(),
                    };
                    out.push(raised(crossings, format!("{}: {shown}", change.name), day, detail));
                }
                rule.below = below;
            }
        }
    }
    out
}

/// All rules.
pub fn rules(store: &Store) -> anyhow::Result<Vec<Rule>> {
    let txn = store.db().begin_read()?;
    let table = txn.open_table(BANK_ALERT_RULES)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (_, v) = row?;
        out.push(decode(v.value(), "alert rule")?);
    }
    Ok(out)
}

/// Stores a new rule; returns it with its id.
pub fn add_rule(store: &Store, mut rule: Rule) -> anyhow::Result<Rule> {
    let txn = store.db().begin_write()?;
    {
        let mut table = txn.open_table(BANK_ALERT_RULES)?;
        let next = table.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
        rule.id = next;
        table.insert(next, encode(&rule)?.as_slice())?;
    }
    txn.commit()?;
    Ok(rule)
}

/// Removes a rule.
pub fn remove_rule(store: &Store, id: u64) -> anyhow::Result<bool> {
    let txn = store.db().begin_write()?;
    let removed = txn.open_table(BANK_ALERT_RULES)?.remove(id)?.is_some();
    txn.commit()?;
    Ok(removed)
}

/// Saves rule states and records the notifications that are new, in one
/// transaction; returns the new ones (to hand to the hook).
pub fn record(store: &Store, rules: &[Rule], raised: Vec<Notification>) -> anyhow::Result<Vec<Notification>> {
    let txn = store.db().begin_write()?;
    let mut fresh = Vec::new();
    {
        let mut rt = txn.open_table(BANK_ALERT_RULES)?;
        for r in rules {
            rt.insert(r.id, encode(r)?.as_slice())?;
        }
        let mut nt = txn.open_table(BANK_NOTIFICATIONS)?;
        for n in raised {
            if nt.get(n.id.as_str())?.is_none() {
                nt.insert(n.id.as_str(), encode(&n)?.as_slice())?;
                fresh.push(n);
            }
        }
    }
    txn.commit()?;
    Ok(fresh)
}

/// Every notification, oldest first.
pub fn notifications(store: &Store) -> anyhow::Result<Vec<Notification>> {
    let txn = store.db().begin_read()?;
    let table = txn.open_table(BANK_NOTIFICATIONS)?;
    let mut out: Vec<Notification> = Vec::new();
    for row in table.iter()? {
        let (_, v) = row?;
        out.push(decode(v.value(), "notification")?);
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.date.cmp(&b.date)).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// Where notifications are handed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Hook {
    /// `sh -c COMMAND`, the notification as JSON on standard input and its
    /// message in `HEARTH_ALERT_MESSAGE`.
    Command {
        /// The command.
        command: String,
    },
    /// An HTTP POST of the notification as JSON to a loopback URL.
    Url {
        /// `http://127.0.0.1:PORT/...`, `http://localhost...` or `http://[::1]...`.
        url: String,
    },
}

impl Hook {
    /// Checks that a URL hook stays on this machine.
    pub fn check(&self) -> Result<(), String> {
        if let Hook::Url { url } = self {
            let rest = url.strip_prefix("http://").ok_or("the hook URL must start with http://")?;
            let host = rest.split(['/', '?']).next().unwrap_or("");
            let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
            if !(host == "localhost" || host == "[::1]" || host.starts_with("127.")) {
                return Err("the hook URL must be on this machine (127.0.0.1, localhost or [::1])".into());
            }
        }
        Ok(())
    }
}

/// Hands notifications to the hook, in the background, each bounded to
/// 10 s; failures are logged.
pub fn run_hook(hook: Hook, notifications: Vec<Notification>) {
    if notifications.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for n in notifications {
            let body = serde_json::to_vec(&n).unwrap_or_default();
            let result: anyhow::Result<()> = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                match &hook {
                    Hook::Command { command } => {
                        use tokio::io::AsyncWriteExt;
                        let mut child = tokio::process::Command::new("sh")
                            .arg("-c")
                            .arg(command)
                            .env("HEARTH_ALERT_MESSAGE", &n.message)
                            .stdin(std::process::Stdio::piped())
                            .kill_on_drop(true)
                            .spawn()?;
                        if let Some(mut stdin) = child.stdin.take() {
                            stdin.write_all(&body).await?;
                        }
                        let status = child.wait().await?;
                        anyhow::ensure!(status.success(), "the hook command exited with {status}");
                    }
                    Hook::Url { url } => {
                        let response = reqwest::Client::new()
                            .post(url)
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(body.clone())
                            .send()
                            .await?;
                        anyhow::ensure!(response.status().is_success(), "the hook URL answered {}", response.status());
                    }
                }
                Ok(())
            })
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the hook took more than 10 s")));
            if let Err(e) = result {
                tracing::warn!(notification = %n.id, "alert hook failed: {e:#}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, date: &str, amount: &str, label: &str) -> AlertOp {
        AlertOp {
            key: key.into(),
            date: date.parse().expect("date"),
            amount: amount.parse().expect("amount"),
            label: label.into(),
            foreign: None,
        }
    }

    fn rule(kind: RuleKind) -> Rule {
        Rule {
            id: 1,
            target: "view:x".into(),
            kind,
            hide_amounts: false,
            from: "2024-01-01".parse().expect("d"),
            below: false,
        }
    }

    #[test]
    fn rules_fire_on_what_they_watch() {
        let history = vec![op("a", "2024-01-02", "-20.00", "CB CARREFOUR 02/01")];
        let added = vec![
            op("b", "2024-01-05", "-1500.00", "VIREMENT INCONNU"),
            op("c", "2024-01-05", "-20.00", "CB CARREFOUR 05/01"),
            op("d", "2023-12-31", "-9000.00", "OLD"),
        ];
        let change = Change {
            target: "view:x",
            name: "Maman",
            currency: "EUR",
            history: &history,
            added: &added,
            balance: Some("150.00".parse().expect("a")),
        };
        let mut r = rule(RuleKind::LargeDebit { amount: "1000".parse().expect("a") });
        let got = evaluate(&mut r, &change);
        assert_eq!(got.len(), 1, "the old debit predates the rule");
        assert!(got[0].message.contains("1500.00 EUR") && got[0].message.contains("VIREMENT INCONNU"), "{got:?}");
        r.hide_amounts = true;
        let hidden = &evaluate(&mut r, &change)[0];
        assert!(!hidden.message.contains("1500"));
        assert!(
            matches!(&hidden.detail, AlertDetail::LargeDebit { amount: None, label, .. } if label == "VIREMENT INCONNU")
        );

        let mut r = rule(RuleKind::NewPayee);
        let got = evaluate(&mut r, &change);
        assert_eq!(got.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), vec!["1:b"], "card dates ignored");

        let mut r = rule(RuleKind::BusyDay { count: 1 });
        assert_eq!(evaluate(&mut r, &change)[0].id, "1:day:2024-01-05");

        let mut r = rule(RuleKind::LowBalance { amount: "200".parse().expect("a") });
        assert_eq!(evaluate(&mut r, &change).len(), 1, "crossing below");
        assert!(r.below);
        assert!(evaluate(&mut r, &change).is_empty(), "still below: no new alert");
        let up = Change { balance: Some("500".parse().expect("a")), ..change };
        assert!(evaluate(&mut r, &up).is_empty());
        assert!(!r.below);

        let mut abroad = added.clone();
        abroad[1].foreign = Some("USD".into());
        let mut r = rule(RuleKind::Foreign);
        let change = Change { added: &abroad, ..up };
        assert_eq!(evaluate(&mut r, &change)[0].id, "1:c");
        assert!(RuleKind::parse("large-debit", None).is_err());
        assert!(RuleKind::parse("low-balance", Some("-5")).is_err());
        assert_eq!(RuleKind::parse("busy-day", Some("3")), Ok(RuleKind::BusyDay { count: 3 }));
    }

    #[test]
    fn hook_urls_stay_on_this_machine() {
        assert!(Hook::Url { url: "http://127.0.0.1:8080/alert".into() }.check().is_ok());
        assert!(Hook::Url { url: "http://localhost/x".into() }.check().is_ok());
        assert!(Hook::Url { url: "http://example.org/x".into() }.check().is_err());
        assert!(Hook::Url { url: "http://10.0.0.1/x".into() }.check().is_err());
        assert!(Hook::Url { url: "https://127.0.0.1/x".into() }.check().is_err());
    }
}
