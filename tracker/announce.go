package tracker

// Announce answers one announce into out (which it resets first, keeping
// its slices' capacity). A refusal sets out.Failure and changes no state
// (except the announce log, which records refused announces like XBT).
//
// Once warm (existing user, existing torrent and peer, out reused) it does
// not allocate. The order of the checks is XBT's, so a client sees the
// same failure XBT would have given it:
//
//  0. host in the deny list (checked here so no frontend can forget it)
//  1. offline_message
//     1b. client rules: peer_id not in the allow list, or in the deny list
//     (not XBT's; checked before the passkey so a refused client costs
//     nothing else, and not logged, like a denied host)
//  2. unregistered torrent pass (no valid passkey, anonymous_announce off)
//  3. unregistered torrent (unknown info_hash, auto_register off)
//  4. leeching forbidden (can_leech 0)
//  5. wait time
//  6. peers limit (new leeching peer only)
//  7. torrents limit (new leeching peer only)
//
// Limits 6 and 7 are not applied to event=stopped: such an announce never
// adds a peer, so there is nothing to limit.
func (t *Tracker) Announce(a *Announce, out *AnnounceResult) {
	out.Reset()
	c := t.cfg.Load()
	sh := t.shardFor(&a.InfoHash)
	now := t.now().Unix()
	if reason := t.announce(c, sh, a, now, out); reason != "" {
		out.Failure = reason
		sh.announceFail.Add(1)
		return
	}
	sh.announceOK.Add(1)
}

func (t *Tracker) announce(c *config, sh *torrentShard, a *Announce, now int64, out *AnnounceResult) Failure {
	if t.Denied(a.Addr) {
		return ErrHostDenied
	}
	if c.s.OfflineMessage != "" {
		t.logAnnounce(c, a, 0, now)
		return Failure(c.s.OfflineMessage)
	}
	if f := t.checkClient(a); f != "" {
		return f
	}
	one := [1]InfoHash{a.InfoHash} // stays on the stack
	u := t.resolveUser(c, a.Passkey, one[:])
	var uid uint32
	if u != nil {
		uid = u.UID
	}
	t.logAnnounce(c, a, uid, now)
	if u == nil && !c.s.AnonymousAnnounce {
		return ErrUnregisteredTorrentPass
	}
	resolved := false // the Resolver was asked already
	for {
		s := sh.find(&a.InfoHash)
		if s == nil {
			if !resolved {
				// Not loaded: perhaps uploaded since the last reload.
				resolved = true
				if t.missTorrent(&a.InfoHash) {
					continue
				}
			}
			if !c.s.AutoRegister {
				return ErrUnregisteredTorrent
			}
			// Check what can be checked before creating the torrent, so a
			// refused announce does not register it. A new torrent has
			// ctime now and no peers: the peers limit cannot trigger.
			if u != nil && a.Left > 0 {
				switch {
				case !u.CanLeech:
					return ErrCanNotLeech
				case u.WaitTime > 0:
					return ErrWaitTime
				case a.Event != EventStopped && u.TorrentsLimit > 0 &&
					t.users.limitLeeching(uid) >= u.TorrentsLimit:
					return ErrTorrentsLimitReached
				}
			}
			s = t.register(sh, &a.InfoHash, now)
		}
		s.mu.Lock()
		if s.removed {
			// RemoveTorrent/ReplaceTorrents won the race: look it up again.
			s.mu.Unlock()
			continue
		}
		reason := t.update(c, s, a, u, uid, now, out)
		s.mu.Unlock()
		return reason
	}
}

// update applies an announce to its swarm (locked): checks 4 to 7, the
// peer upsert, the ledger and the response.
func (t *Tracker) update(c *config, s *swarm, a *Announce, u *User, uid uint32, now int64, out *AnnounceResult) Failure {
	key := peerKey{uid, a.PeerID}
	sl, found := s.lookup(key)
	leech := a.Left > 0
	stopped := a.Event == EventStopped

	reserved := false // torrents_limit slot taken by reserveLeeching
	// uid's peers here before a new one is added: counted once, for the
	// limits and for the user's leeching-torrent count.
	var uc userPeers
	if !found && !stopped && uid != 0 {
		uc = s.userCount(uid)
		// A bound no client reaches that keeps counting a user's peers
		// in a big swarm cheap (bigIndex).
		if uc.total >= maxUserPeers {
			return ErrPeersLimitReached
		}
	}
	if u != nil && leech {
		if !u.CanLeech {
			return ErrCanNotLeech
		}
		if u.WaitTime > 0 && s.ctime+int64(u.WaitTime) > now {
			return ErrWaitTime
		}
		if !found && !stopped {
			n := uc.leeching
			if u.PeersLimit > 0 && n >= u.PeersLimit {
				return ErrPeersLimitReached
			}
			// Only a first leeching peer here makes this torrent one more
			// of the user's leeching torrents.
			if n == 0 && u.TorrentsLimit > 0 {
				if !t.users.reserveLeeching(uid, u.TorrentsLimit) {
					return ErrTorrentsLimitReached
				}
				reserved = true
			}
		}
	}
	// Accepted: nothing below can fail.

	var up, down, complete uint64
	var seedTime, leechTime uint32
	present := false
	if found {
		p := s.at(sl)
		// Seed and leech time: the interval since the peer's previous
		// announce counts if it is within the expiry window (a peer silent
		// longer would have been dropped), for what the peer was during it
		// (its stored left). A stop's interval counts too.
		if uid != 0 && s.fid != 0 {
			// d <= expireAfter (1.5 × the interval) fits a uint32.
			if d := now - int64(p.lastSeen); d > 0 && d <= c.expireAfter {
				if p.left == 0 {
					seedTime = uint32(d)
				} else {
					leechTime = uint32(d)
				}
			}
		}
		// Credit only an increase of both counters: a client restarted
		// with counters reset (or lying downwards) gets no credit and its
		// new values become the baseline.
		if a.Uploaded >= p.uploaded && a.Downloaded >= p.downloaded {
			up, down = a.Uploaded-p.uploaded, a.Downloaded-p.downloaded
			if uid != 0 {
				up, down = t.capCredit(c, uid, up, down)
			}
		}
		// Better than XBT: a peer that finished without sending
		// event=completed (aria2 --seed-time=0 sends only stopped&left=0)
		// is counted too; the flag makes sure a peer counts once. A
		// "completed" with bytes still left is no completion (XBT refuses
		// the request outright; here it is an ordinary announce).
		if p.flags&flagCounted == 0 && a.Left == 0 && (a.Event == EventCompleted || p.left > 0) {
			p.flags |= flagCounted
			complete = 1
		}
		if stopped {
			// Remove it as it is stored: the per-user counts know it by
			// its stored left, not the one just sent.
			t.removePeer(s, sl)
		} else {
			wasLeech := p.left > 0
			p.uploaded, p.downloaded, p.left = a.Uploaded, a.Downloaded, a.Left
			p.lastSeen = uint32(now)
			s.setAddr(p, a.Addr, a.Port)
			if wasLeech != leech {
				sl = s.move(sl)
				if s.userMove(uid, leech) {
					if leech {
						t.users.addLeeching(uid, 1)
					} else {
						t.users.addLeeching(uid, -1)
					}
				}
			}
			present = true
		}
	} else if !stopped {
		p := peer{
			uploaded: a.Uploaded, downloaded: a.Downloaded, left: a.Left,
			uid: uid, lastSeen: uint32(now), id: a.PeerID,
		}
		s.setAddr(&p, a.Addr, a.Port)
		if a.Event == EventCompleted && a.Left == 0 {
			p.flags |= flagCounted
			complete = 1
		}
		sl = s.add(&p)
		// The user's first leeching peer here: one more leeching torrent.
		if uid != 0 && leech && uc.leeching == 0 && !reserved {
			t.users.addLeeching(uid, 1)
		}
		present = true
	}
	s.completed += complete
	if complete != 0 && u != nil && s.fid != 0 {
		// One xbt_snatched row per counted completion (flagCounted makes
		// it once per peer). fid 0 (auto-registered, not reloaded yet):
		// not logged, like its completed count.
		t.ledger.snatch(&SnatchEntry{Addr: a.Addr, UID: uid, Fid: s.fid, Mtime: now})
	}

	// What the user is credited: the real deltas times the factors. The
	// per-torrent row keeps the real ones.
	creditUp, creditDown := up, down
	if uid != 0 && (up|down) != 0 {
		creditUp, creditDown = t.multiply(c, uid, s.fid, now, up, down)
	}
	s.lastAnnounce = uint32(now)
	r := announceRecord{
		uid: uid, user: u != nil, fid: s.fid,
		up: up, down: down, creditUp: creditUp, creditDown: creditDown, complete: complete,
		seeders: len(s.seeders), leechers: len(s.leechers),
		left: a.Left, mtime: now,
		seedTime: seedTime, leechTime: leechTime,
	}
	if r.user {
		// The peer itself keeps its user active; only after a stop may
		// the user have no peer left here.
		r.active = present || s.active(uid)
	}
	t.ledger.recordAnnounce(&r)

	out.Complete = len(s.seeders)
	out.Incomplete = len(s.leechers)
	out.Interval = c.interval
	out.MinInterval = c.interval
	if !stopped {
		n := a.NumWant
		if n < 0 {
			n = c.numWant
		}
		if n > c.maxNumWant {
			n = c.maxNumWant
		}
		s.sample(out, sl, present, !leech, n, a.WantPeerID)
	}
	return ""
}

func (t *Tracker) logAnnounce(c *config, a *Announce, uid uint32, now int64) {
	if !c.s.LogAnnounce {
		return
	}
	t.ledger.logAnnounce(&AnnounceLogEntry{
		Addr: a.Addr, Port: a.Port, Event: a.Event, InfoHash: a.InfoHash, PeerID: a.PeerID,
		Uploaded: a.Uploaded, Downloaded: a.Downloaded, Left: a.Left, UID: uid, Mtime: now,
	})
}
