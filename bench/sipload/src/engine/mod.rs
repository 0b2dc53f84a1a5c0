//! The scenario-independent part of the generator: worker threads, each with its own clients,
//! UDP sockets, deadline heap and open-loop pacer, driven phase by phase from the caller.
//!
//! A [`Scenario`] (REGISTER; presence: SUBSCRIBE, PUBLISH, NOTIFY) owns one thread's simulated
//! clients and says what to send when a unit of work starts, when a datagram arrives and when a
//! timer fires. The engine owns time and sockets: per loop turn it starts what the pacer says is
//! due, fires due timers, drains the sockets (edge-triggered, until `WouldBlock`), and sleeps in
//! `epoll` until the next of those is due. Between phases a thread keeps draining its sockets
//! (a server's NOTIFYs are answered whenever they come) and wakes for the next command through
//! a [`Waker`]. Nothing allocates per message beyond what a scenario chooses to.

pub mod cpu;
pub mod pacer;
pub mod timers;
pub mod transaction;
pub mod udp;

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use crate::report::Stats;
use pacer::Pacer;
use timers::{Timer, Timers};
use transaction::TimerConfig;

/// One thread's share of a scenario: its clients and what happens to them.
pub trait Scenario {
    /// Begins one unit of work (a registration) at `now`; `false` when no client is free.
    fn start(&mut self, now: Instant, io: &mut Io<'_>) -> bool;
    /// Handles one received datagram.
    fn on_datagram(&mut self, now: Instant, datagram: &[u8], io: &mut Io<'_>);
    /// Handles a deadline set through [`Io::timers`]; stale generations are the scenario's to
    /// ignore.
    fn on_timer(&mut self, now: Instant, timer: Timer, io: &mut Io<'_>);
    /// Units in progress.
    fn outstanding(&self) -> usize;
    /// The phase is over: forget every unit in progress, counting it unfinished, so the next
    /// phase starts with every client free.
    fn abandon(&mut self, io: &mut Io<'_>);
    /// A phase begins at `now` (before its first start); `phase.mode` says what its units are
    /// for scenarios with more than one kind.
    fn begin(&mut self, _phase: &Phase, _now: Instant) {}
    /// Whether the phase may end at `now` once its last unit started: by default when no unit
    /// is in progress. A scenario that expects requests from the server after its own units
    /// finished (NOTIFYs after a PUBLISH) waits for them to go quiet.
    fn settled(&self, _now: Instant) -> bool {
        self.outstanding() == 0
    }
}

/// What a scenario is built from, on its own thread.
#[derive(Clone, Debug)]
pub struct ThreadContext {
    /// This thread's number, 0-based.
    pub thread: usize,
    /// How many worker threads there are.
    pub threads: usize,
    /// Global indices of this thread's clients.
    pub clients: Range<u32>,
    /// Local addresses of this thread's sockets, in [`Io::send`] order.
    pub locals: Vec<SocketAddr>,
}

/// The engine's side of a scenario callback: sockets, timers and counters.
pub struct Io<'a> {
    sockets: &'a [mio::net::UdpSocket],
    /// The thread's deadline heap.
    pub timers: &'a mut Timers,
    /// The phase's counters.
    pub stats: &'a mut Stats,
    /// Retransmission timing for this run.
    pub timer_config: &'a TimerConfig,
}

impl Io<'_> {
    /// Sends one datagram on socket `socket`; a failure is counted, and left to Timer E.
    pub fn send(&mut self, socket: usize, datagram: &[u8]) {
        self.stats.sent += 1;
        let Some(s) = self.sockets.get(socket) else {
            self.stats.send_errors += 1;
            return;
        };
        loop {
            match s.send(datagram) {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.stats.send_errors += 1;
                    return;
                }
            }
        }
    }
}

/// Settings of the engine itself, whatever the scenario.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Where to send.
    pub server: SocketAddr,
    /// Simulated clients in all, split evenly over the threads.
    pub clients: u32,
    /// Worker threads.
    pub threads: usize,
    /// UDP sockets per thread; a thread's clients are spread over them.
    pub sockets_per_thread: usize,
    /// First local port (socket k of all binds `local_port + k`), or 0 for ephemeral ports.
    /// Fixed ports keep Contacts the same from run to run, so a registrar replaces bindings
    /// instead of collecting new ones.
    pub local_port: u16,
    /// Most units in progress at once, over all threads.
    pub max_outstanding: usize,
    /// Socket send and receive buffer size to ask for, bytes.
    pub socket_buffer: usize,
    /// Retransmission and timeout.
    pub timers: TimerConfig,
    /// After a phase's last start, how long to wait for outstanding units before counting them
    /// unfinished.
    pub drain: Duration,
}

/// One stretch of constant offered load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    /// Units per second over all threads.
    pub rate: f64,
    /// How long to start new units.
    pub duration: Duration,
    /// What a unit is, for scenarios with several kinds (0: the scenario's only kind).
    pub mode: u32,
}

impl Phase {
    /// `rate` units per second for `duration`, of the scenario's only (or first) kind.
    pub fn new(rate: f64, duration: Duration) -> Self {
        Phase {
            rate,
            duration,
            mode: 0,
        }
    }
}

/// Worker threads waiting for phases.
pub struct Runner {
    workers: Vec<Worker>,
    results: mpsc::Receiver<io::Result<Stats>>,
}

struct Worker {
    commands: mpsc::Sender<Command>,
    /// Wakes the thread, which answers the server between phases, when a command is sent.
    waker: Option<Arc<Waker>>,
    handle: JoinHandle<()>,
}

#[derive(Clone, Copy, Debug)]
struct Command {
    phase: Phase,
    start: Instant,
}

impl Runner {
    /// Starts the threads; each opens its sockets and builds its scenario with `make`.
    pub fn start<S, F>(config: &LoadConfig, make: F) -> io::Result<Runner>
    where
        S: Scenario,
        F: Fn(ThreadContext) -> S + Send + Sync + Clone + 'static,
    {
        let threads = config.threads.max(1);
        let sockets = config.sockets_per_thread.max(1);
        let (result_tx, results) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let mut workers = Vec::with_capacity(threads);
        for thread in 0..threads {
            let (commands, command_rx) = mpsc::channel();
            let clients = share(config.clients, threads, thread);
            let config = config.clone();
            let make = make.clone();
            let result_tx = result_tx.clone();
            let ready_tx = ready_tx.clone();
            let handle = thread::Builder::new()
                .name(format!("sipload-{thread}"))
                .spawn(move || {
                    let first_port = |k: usize| {
                        let n = thread * sockets + k;
                        if config.local_port == 0 {
                            Ok(0)
                        } else {
                            u16::try_from(usize::from(config.local_port) + n).map_err(|_| {
                                io::Error::new(io::ErrorKind::InvalidInput, "local port past 65535")
                            })
                        }
                    };
                    let worker = (0..sockets)
                        .map(|k| udp::open(config.server, first_port(k)?, config.socket_buffer))
                        .collect::<io::Result<Vec<_>>>()
                        .and_then(|socks| {
                            let locals = socks
                                .iter()
                                .map(mio::net::UdpSocket::local_addr)
                                .collect::<io::Result<Vec<_>>>()?;
                            let scenario = make(ThreadContext {
                                thread,
                                threads,
                                clients: clients.clone(),
                                locals,
                            });
                            Thread::new(socks, scenario, &config, threads)
                        });
                    match worker {
                        Ok(mut worker) => {
                            let _ = ready_tx.send(Ok((thread, Arc::clone(&worker.waker))));
                            // So that `start` sees a thread that died before this as gone.
                            drop(ready_tx);
                            loop {
                                match command_rx.try_recv() {
                                    Ok(command) => {
                                        let stats = worker.run_phase(command);
                                        if result_tx.send(stats).is_err() {
                                            break;
                                        }
                                    }
                                    Err(mpsc::TryRecvError::Empty) => {
                                        if worker.between_phases().is_err() {
                                            // Polling failed: wait for commands without
                                            // answering the server.
                                            match command_rx.recv() {
                                                Ok(command) => {
                                                    let stats = worker.run_phase(command);
                                                    if result_tx.send(stats).is_err() {
                                                        break;
                                                    }
                                                }
                                                Err(_) => break,
                                            }
                                        }
                                    }
                                    Err(mpsc::TryRecvError::Disconnected) => break,
                                }
                            }
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                })?;
            workers.push(Worker {
                commands,
                waker: None,
                handle,
            });
        }
        drop(ready_tx);
        let mut runner = Runner { workers, results };
        for _ in 0..threads {
            match ready.recv() {
                Ok(Ok((thread, waker))) => {
                    if let Some(w) = runner.workers.get_mut(thread) {
                        w.waker = Some(waker);
                    }
                }
                Ok(Err(e)) => {
                    runner.stop();
                    return Err(e);
                }
                Err(_) => {
                    runner.stop();
                    return Err(io::Error::other("a worker thread died while starting"));
                }
            }
        }
        Ok(runner)
    }

    /// Runs one phase on every thread and merges what they measured.
    pub fn run_phase(&mut self, phase: Phase) -> io::Result<Stats> {
        // A common start a little ahead, so that threads begin together.
        let start = Instant::now() + Duration::from_millis(20);
        for w in &self.workers {
            w.commands
                .send(Command { phase, start })
                .map_err(|_| io::Error::other("a worker thread died"))?;
            w.wake();
        }
        let cpu_before = cpu::process_time();
        let mut merged = Stats::new(phase.rate, phase.duration);
        for _ in &self.workers {
            let stats = self
                .results
                .recv()
                .map_err(|_| io::Error::other("a worker thread died"))??;
            merged.merge(&stats);
        }
        let cpu_after = cpu::process_time();
        merged.cpu = cpu_after.zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
        merged.wall = start.elapsed();
        Ok(merged)
    }

    /// Ends the threads.
    pub fn stop(self) {
        for w in self.workers {
            let Worker {
                commands,
                waker,
                handle,
            } = w;
            drop(commands);
            if let Some(waker) = waker {
                let _ = waker.wake();
            }
            let _ = handle.join();
        }
    }
}

impl Worker {
    fn wake(&self) {
        if let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
    }
}

/// One worker thread's state between phases.
struct Thread<S> {
    sockets: Vec<mio::net::UdpSocket>,
    readable: Vec<bool>,
    poll: Poll,
    events: Events,
    scenario: S,
    timers: Timers,
    timer_config: TimerConfig,
    buffer: Vec<u8>,
    max_outstanding: usize,
    drain: Duration,
    threads: usize,
    waker: Arc<Waker>,
    /// What happens between phases (answers to the server's requests, late responses): kept
    /// out of every phase's figures.
    background: Stats,
}

impl<S: Scenario> Thread<S> {
    fn new(
        mut sockets: Vec<mio::net::UdpSocket>,
        scenario: S,
        config: &LoadConfig,
        threads: usize,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        for (i, s) in sockets.iter_mut().enumerate() {
            poll.registry().register(s, Token(i), Interest::READABLE)?;
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        Ok(Thread {
            waker,
            background: Stats::new(0.0, Duration::ZERO),
            readable: vec![true; sockets.len()],
            sockets,
            poll,
            events: Events::with_capacity(64),
            scenario,
            timers: Timers::default(),
            timer_config: config.timers,
            buffer: vec![0; MAX_DATAGRAM],
            // Each thread gets its share of the cap, at least one.
            max_outstanding: config.max_outstanding.div_ceil(threads).max(1),
            drain: config.drain,
            threads,
        })
    }

    fn run_phase(&mut self, command: Command) -> io::Result<Stats> {
        let Command { phase, start } = command;
        let mut stats = Stats::new(phase.rate, phase.duration);
        let mut pacer = Pacer::new(start, phase.rate / self.threads as f64, phase.duration);
        let end = start + phase.duration;
        let drain_end = end + self.drain;
        self.scenario.begin(&phase, Instant::now());
        loop {
            let now = Instant::now();
            let idle = pacer.next_at().is_none() && self.scenario.settled(now);
            if now >= end && (idle || now >= drain_end) {
                // Starts a descheduled thread never got to hand out did not happen.
                stats.not_started += pacer.remaining();
                break;
            }
            let mut io = Io {
                sockets: &self.sockets,
                timers: &mut self.timers,
                stats: &mut stats,
                timer_config: &self.timer_config,
            };
            if let Some(due_at) = pacer.next_at()
                && due_at <= now
            {
                io.stats
                    .start_lag
                    .record(u64::try_from((now - due_at).as_micros()).unwrap_or(u64::MAX));
            }
            for _ in 0..pacer.due(now) {
                if self.scenario.outstanding() < self.max_outstanding
                    && self.scenario.start(now, &mut io)
                {
                    io.stats.started += 1;
                } else {
                    io.stats.not_started += 1;
                }
            }
            while let Some(timer) = io.timers.pop_due(now) {
                self.scenario.on_timer(now, timer, &mut io);
            }
            let mut more = false;
            for (i, socket) in self.sockets.iter().enumerate() {
                if !self.readable[i] {
                    continue;
                }
                let mut io = Io {
                    sockets: &self.sockets,
                    timers: &mut self.timers,
                    stats: &mut stats,
                    timer_config: &self.timer_config,
                };
                let mut budget = RECV_BUDGET;
                while budget > 0 {
                    budget -= 1;
                    match socket.recv(&mut self.buffer) {
                        Ok(n) => {
                            io.stats.received += 1;
                            let datagram = &self.buffer[..n];
                            self.scenario.on_datagram(Instant::now(), datagram, &mut io);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            self.readable[i] = false;
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // ICMP errors (port unreachable) surface on connected sockets as
                        // ConnectionRefused: a request was lost, Timer E/F handle it.
                        Err(_) => io.stats.send_errors += 1,
                    }
                }
                more |= self.readable[i];
            }
            let now = Instant::now();
            let wake = [
                pacer.next_at(),
                self.timers.next(),
                Some(if now < end { end } else { drain_end }),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
            let timeout = if more {
                Duration::ZERO
            } else {
                wake.saturating_duration_since(now)
            };
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            for event in &self.events {
                if let Some(flag) = self.readable.get_mut(event.token().0) {
                    *flag = true;
                }
            }
        }
        let mut io = Io {
            sockets: &self.sockets,
            timers: &mut self.timers,
            stats: &mut stats,
            timer_config: &self.timer_config,
        };
        self.scenario.abandon(&mut io);
        self.timers.clear();
        Ok(stats)
    }
}

impl<S: Scenario> Thread<S> {
    /// One turn between phases: fires due timers, answers what the server sends, and sleeps
    /// until the next timer, a datagram or a command (the waker), at most a second.
    fn between_phases(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let mut io = Io {
            sockets: &self.sockets,
            timers: &mut self.timers,
            stats: &mut self.background,
            timer_config: &self.timer_config,
        };
        while let Some(timer) = io.timers.pop_due(now) {
            self.scenario.on_timer(now, timer, &mut io);
        }
        let mut more = false;
        for (i, socket) in self.sockets.iter().enumerate() {
            if !self.readable[i] {
                continue;
            }
            let mut budget = RECV_BUDGET;
            while budget > 0 {
                budget -= 1;
                match socket.recv(&mut self.buffer) {
                    Ok(n) => {
                        let mut io = Io {
                            sockets: &self.sockets,
                            timers: &mut self.timers,
                            stats: &mut self.background,
                            timer_config: &self.timer_config,
                        };
                        io.stats.received += 1;
                        self.scenario
                            .on_datagram(Instant::now(), &self.buffer[..n], &mut io);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.readable[i] = false;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => self.background.send_errors += 1,
                }
            }
            more |= self.readable[i];
        }
        let now = Instant::now();
        let timeout = if more {
            Duration::ZERO
        } else {
            self.timers
                .next()
                .map_or(IDLE_WAIT, |at| at.saturating_duration_since(now))
                .min(IDLE_WAIT)
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in &self.events {
            if let Some(flag) = self.readable.get_mut(event.token().0) {
                *flag = true;
            }
        }
        // The counters only grow between phases; start them over now and then.
        if self.background.received > 1 << 40 {
            self.background = Stats::new(0.0, Duration::ZERO);
        }
        Ok(())
    }
}

/// Thread `thread`'s contiguous share of `total` clients.
pub fn share(total: u32, threads: usize, thread: usize) -> Range<u32> {
    let threads = threads as u64;
    let at = |t: u64| (u64::from(total) * t / threads) as u32;
    at(thread as u64)..at(thread as u64 + 1)
}

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams read from one socket per loop turn, so sends and timers are not starved.
const RECV_BUDGET: usize = 256;
/// The waker's token: past every socket's.
const WAKE: Token = Token(usize::MAX);
/// Longest sleep between phases without a timer, datagram or command.
const IDLE_WAIT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_shared_out_without_gaps() {
        assert_eq!(share(10, 3, 0), 0..3);
        assert_eq!(share(10, 3, 1), 3..6);
        assert_eq!(share(10, 3, 2), 6..10);
        assert_eq!(share(u32::MAX, 2, 1).end, u32::MAX);
        assert_eq!(share(1, 2, 0), 0..0);
    }
}
