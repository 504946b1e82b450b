//! The workload: what the people and the attacker do at each tick.
//!
//! Each tick picks one action: make an invitation (lifetimes from 1 s to a
//! day, so some expire mid-join), hand a token to a node (a fresh one, one
//! already handed to someone else so two joiners race, a used one, an
//! expired one, the node's own, now and then mistyped), re-run a join that
//! never answered, forge a request as the hostile node, remove a contact,
//! crash a node, cut a link (one way or both) or heal all links.

use hearth_protocol::pairing::{self, PairRequest, Role};
use hearth_protocol::token::SECRET_LEN;
use hearth_protocol::PeerBytes;
use rand::seq::SliceRandom;
use rand::Rng;

use super::{short, Ev, Faults, World, TTLS};
use crate::invariants::TokenTruth;
use crate::net::Kind;
use crate::node::encode;

impl World {
    fn random_up_node(&mut self) -> Option<usize> {
        let up: Vec<usize> = (0..self.cfg.nodes).filter(|&i| self.nodes[i].up).collect();
        up.choose(&mut self.rng).copied()
    }

    /// One tick's action.
    pub(super) fn workload(&mut self) {
        let roll = self.rng.gen_range(0..100);
        let faults = self.cfg.faults;
        match roll {
            0..=19 => self.invite(),
            20..=54 => self.hand_token(),
            55..=61 => self.retry_unanswered(),
            62..=70 => self.forge(),
            71..=74 => self.remove_contact(),
            75..=81 if faults == Faults::All => match self.random_up_node() {
                Some(i) => self.crash(i, "(workload)"),
                None => self.log("idle".into()),
            },
            82..=88 if faults != Faults::None => self.partition(),
            89..=90 if faults != Faults::None => {
                self.net.heal_all();
                self.log("heal all links".into());
            }
            _ => self.log("idle".into()),
        }
    }

    fn invite(&mut self) {
        let Some(i) = self.random_up_node() else { return self.log("idle".into()) };
        let ttl = *TTLS.choose(&mut self.rng).expect("TTLS is not empty");
        let now = self.now_secs();
        let (text, invitation) = self.nodes[i].invite(now, ttl, &mut self.rng);
        let id = invitation.token_id().to_vec();
        self.stats.bump("workload.invitations");
        self.log(format!("n{i} invites: {} ttl {ttl}s", short(&id)));
        let secret = invitation.secret.to_vec();
        self.truth.add_token(TokenTruth { id, inviter: i, secret, expires_at: invitation.expires_at, text });
    }

    /// Hands a token to a node: a recent one, one already handed to someone
    /// else (two joiners race, or a used token is reused), or any, possibly
    /// expired or the node's own; now and then mistyped.
    fn hand_token(&mut self) {
        let n = self.truth.tokens.len();
        if n == 0 {
            return self.log("idle".into());
        }
        let t = match self.rng.gen_range(0..10) {
            0..=3 => n - 1 - self.rng.gen_range(0..n.min(3)),
            4..=6 if !self.handed.is_empty() => *self.handed.choose(&mut self.rng).expect("not empty"),
            _ => self.rng.gen_range(0..n),
        };
        // Mostly to a node that is not yet the inviter's contact, otherwise
        // contacts saturate and every join is refused locally.
        let inviter = self.truth.tokens[t].inviter;
        let strangers: Vec<usize> = (0..self.cfg.nodes)
            .filter(|&i| {
                let (a, b) = (&self.nodes[i], &self.nodes[inviter]);
                i != inviter
                    && a.up
                    && !a.durable.contacts.contains_key(&b.id)
                    && !b.durable.contacts.contains_key(&a.id)
            })
            .collect();
        let j = match strangers.choose(&mut self.rng) {
            Some(&j) if self.rng.gen_bool(0.8) => j,
            _ => match self.random_up_node() {
                Some(j) => j,
                None => return self.log("idle".into()),
            },
        };
        self.handed.push(t);
        let mut text = self.truth.tokens[t].text.clone();
        let typo = self.rng.gen_bool(0.03);
        if typo {
            // A typo: one character swapped for another base58 one.
            let pos = self.rng.gen_range(8..text.len());
            let old = text.as_bytes()[pos];
            let new = if old == b'z' { b'y' } else { b'z' };
            text.replace_range(pos..=pos, std::str::from_utf8(&[new]).expect("ascii"));
        }
        let typo = if typo { " (mistyped)" } else { "" };
        self.log(format!(
            "n{j} is handed token {} of n{}{typo}",
            short(&self.truth.tokens[t].id),
            self.truth.tokens[t].inviter
        ));
        self.start_join(j, t, text, false);
    }

    /// A person whose join never answered runs it again.
    fn retry_unanswered(&mut self) {
        let candidates: Vec<usize> = (0..self.intents.len())
            .filter(|&k| {
                let it = &self.intents[k];
                !it.answered && self.nodes[it.joiner].up && !self.nodes[it.joiner].is_pending(k)
            })
            .collect();
        match candidates.choose(&mut self.rng) {
            Some(&k) => {
                self.stats.bump("workload.rejoins");
                self.rejoin(k)
            }
            None => self.log("idle".into()),
        }
    }

    /// The hostile node knows token ids (they are public on the wire) but no
    /// secret. It tries random proofs, proofs captured from other joiners
    /// (bound to their ids), the inviter's proof reflected, malformed
    /// requests, unknown ids and garbage frames.
    fn forge(&mut self) {
        let h = self.hostile;
        if self.truth.tokens.is_empty() {
            return self.log("idle".into());
        }
        let t = self.rng.gen_range(0..self.truth.tokens.len());
        let tok = self.truth.tokens[t].clone();
        let secret: [u8; SECRET_LEN] = tok.secret.as_slice().try_into().expect("32-byte secret");
        let inviter_id = self.nodes[tok.inviter].id.clone();
        let mut random = [0u8; 32];
        self.rng.fill(&mut random[..]);
        let variant = self.rng.gen_range(0..6);
        let (label, token_id, proof) = match variant {
            0 => ("random proof", tok.id.clone(), random.to_vec()),
            1 => {
                let other = self.rng.gen_range(0..self.cfg.nodes);
                let captured = pairing::proof(&secret, Role::Joiner, &inviter_id, &self.nodes[other].id);
                ("replayed proof", tok.id.clone(), captured.to_vec())
            }
            2 => {
                let reflected = pairing::proof(&secret, Role::Inviter, &inviter_id, &self.nodes[h].id);
                ("reflected proof", tok.id.clone(), reflected.to_vec())
            }
            3 => ("short proof", tok.id.clone(), random[..16].to_vec()),
            4 => ("unknown token id", random[..16].to_vec(), random.to_vec()),
            _ => ("garbage frame", Vec::new(), Vec::new()),
        };
        let bytes = if variant == 5 {
            let mut garbage = vec![0, 0, 0, 32];
            garbage.extend_from_slice(&random);
            garbage
        } else {
            encode(&PairRequest { token_id, name: "mallory".into(), proof })
        };
        self.stats.bump("hostile.attempts");
        self.log(format!("hostile n{h} sends n{} a {label} for {}", tok.inviter, short(&tok.id)));
        let conv = self.conv();
        self.send(h, tok.inviter, Kind::Request, conv, bytes, None);
    }

    fn remove_contact(&mut self) {
        let Some(i) = self.random_up_node() else { return self.log("idle".into()) };
        let peers: Vec<PeerBytes> = self.nodes[i].durable.contacts.keys().cloned().collect();
        let Some(peer) = peers.choose(&mut self.rng).cloned() else { return self.log("idle".into()) };
        let p = self.index[&peer];
        self.nodes[i].remove_contact(&peer);
        self.truth.removed.insert((i, p));
        self.stats.bump("workload.removals");
        self.log(format!("n{i} removes contact n{p}"));
    }

    fn partition(&mut self) {
        let n = self.cfg.nodes;
        let a = self.rng.gen_range(0..n);
        let b = (a + self.rng.gen_range(1..n)) % n;
        self.net.cut(a, b);
        let both = self.rng.gen_bool(0.5);
        if both {
            self.net.cut(b, a);
        }
        self.stats.bump("fault.partition");
        self.log(format!("partition n{a}{}n{b}", if both { "<->" } else { "->" }));
        let at = self.now_ms + self.rng.gen_range(500..=10_000);
        self.schedule(at, Ev::Heal(a, b));
    }
}
