'use strict';
// The node case of tests/apps/run-apps.sh: a Node.js program with a forked child, a worker
// thread and an HTTP server.
//
//     node node-app.js DIR
//
// - a child (child_process.fork: a node process, its IPC channel a unix socketpair) that the
//   main process pings every 50 ms; the child answers each ping with its own count of pings
//   seen and of its own timer's ticks;
// - a worker_threads Worker adding 1 to a SharedArrayBuffer's counter with Atomics every 2 ms;
//   it checks each old value is its own count (the main process reads the counter too);
// - setInterval timers (50 ms and 200 ms) counting ticks;
// - an http server on 127.0.0.1 (a free port, written to DIR/port), keep-alive with no
//   timeouts: "GET /mark" records every counter (the test fetches it before the dump and after
//   the restore on the same connection) and makes an IPC round trip with the child; its body is
//   "request N on connection C", its status "200 OK", or 500 and the reasons; "GET /ping"
//   answers "pong".
// Prints "READY" once all runs.
// SIGTERM: checks two marks were taken, that the timers, the IPC pings, the child's answers and
// ticks and the worker's counter went on after the second, that no ping was lost and the
// worker saw no foreign value, and makes one more IPC round trip; prints PASS or "FAIL: " and
// the reasons; the child and the worker end, then the process.
// APPS_CORRUPT=ipc|worker|timers breaks that state when the second mark is taken (the test's
// check that each check can fail).
const http = require('http');
const fs = require('fs');
const path = require('path');
const { fork } = require('child_process');
const { Worker, isMainThread, workerData } = require('worker_threads');

const CORRUPT = process.env.APPS_CORRUPT || '';

function runChild() {
  let seen = 0;
  let ticks = 0;
  setInterval(() => ticks++, 100);
  process.on('message', (m) => {
    if (m && m.ping !== undefined) {
      seen++;
      process.send({ pong: m.ping, seen, ticks });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

function runWorker() {
  const a = new Int32Array(workerData);
  let mine = 0;
  while (Atomics.load(a, 2) === 0) {
    if (Atomics.add(a, 0, 1) !== mine)
      Atomics.add(a, 3, 1); // someone else's value
    mine++;
    Atomics.wait(a, 1, 0, 2); // 2 ms: index 1 stays 0
  }
}

function runMain(dir) {
  const shared = new SharedArrayBuffer(16); // counter, sleep word, stop, foreign values
  const a = new Int32Array(shared);
  const worker = new Worker(__filename, { workerData: shared });
  const child = fork(__filename, ['child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let fast = 0;
  let slow = 0;
  const timers = [setInterval(() => fast++, 50), setInterval(() => slow++, 200)];
  let pings = 0;
  let pongs = 0;
  let lastPong = { seen: 0, ticks: 0 };
  let lostPongs = 0;
  const waiting = new Map(); // ping number -> resolve
  let childErrors = 0;
  child.on('error', () => childErrors++);
  child.on('message', (m) => {
    pongs++;
    lastPong = m;
    const done = waiting.get(m.pong);
    if (done) {
      waiting.delete(m.pong);
      done(m);
    }
  });
  // one IPC round trip: the child's answer, or null after 2 s
  const roundTrip = () => new Promise((resolve) => {
    const n = ++pings;
    const t = setTimeout(() => { waiting.delete(n); resolve(null); }, 2000);
    waiting.set(n, (m) => { clearTimeout(t); resolve(m); });
    try {
      child.send({ ping: n }, (err) => {
        if (err)
          childErrors++;
      });
    } catch (e) {
      clearTimeout(t);
      waiting.delete(n);
      resolve(null);
    }
  });
  const pinger = setInterval(() => {
    if (child.connected)
      roundTrip().then((m) => { if (!m) lostPongs++; });
  }, 50);
  const counters = () => ({ fast, slow, pongs, childSeen: lastPong.seen, childTicks: lastPong.ticks,
    worker: Atomics.load(a, 0) });
  const marks = [];

  function corrupt() {
    if (CORRUPT === 'ipc') child.kill('SIGKILL');
    if (CORRUPT === 'worker') Atomics.store(a, 2, 1);
    if (CORRUPT === 'timers') timers.forEach(clearInterval);
  }

  let connections = 0;
  const server = http.createServer(async (req, res) => {
    const sock = req.socket;
    if (sock.connNo === undefined) {
      sock.connNo = ++connections;
      sock.requests = 0;
    }
    sock.requests++;
    let status = 200;
    let reason = 'OK';
    let body;
    if (req.url === '/mark') {
      if (marks.length === 1)
        corrupt();
      marks.push(counters());
      const m = await roundTrip();
      if (!m) {
        status = 500;
        reason = 'no IPC answer from the child in 2 s';
      }
      body = `request ${sock.requests} on connection ${sock.connNo}\n`;
    } else if (req.url === '/ping') {
      body = 'pong\n';
    } else {
      status = 404;
      reason = 'Not Found';
      body = `no ${req.url}\n`;
    }
    res.writeHead(status, reason, { 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 0; // no timeouts: the connection stays over the checkpoint
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.listen(0, '127.0.0.1', () => {
    const ready = setInterval(() => {
      if (slow < 1 || lastPong.ticks < 1 || Atomics.load(a, 0) < 10) // every counter going
        return;
      clearInterval(ready);
      fs.writeFileSync(path.join(dir, 'port.tmp'), `${server.address().port}\n`);
      fs.renameSync(path.join(dir, 'port.tmp'), path.join(dir, 'port'));
      console.log(`READY pid ${process.pid} port ${server.address().port} child ${child.pid}`);
    }, 20);
  });

  process.on('SIGTERM', async () => {
    const bad = [];
    const now = counters();
    const last = await roundTrip();
    if (!last)
      bad.push('no IPC answer from the child in 2 s at SIGTERM');
    else if (last.seen !== last.pong)
      bad.push(`the child saw ${last.seen} pings of ${last.pong}`);
    if (marks.length !== 2) {
      bad.push(`${marks.length} marks taken, expected 2 (before the dump, after the restore)`);
    } else {
      for (const k of Object.keys(now)) {
        if (!(marks[0][k] > 0 && now[k] > marks[1][k]))
          bad.push(`${k} did not go on after the restore: ${marks[0][k]} at the dump, ${marks[1][k]} after the restore, ${now[k]} now`);
      }
    }
    if (lostPongs !== 0 || childErrors !== 0)
      bad.push(`${lostPongs} pings had no answer in 2 s, ${childErrors} errors on the IPC channel`);
    if (Atomics.load(a, 3) !== 0)
      bad.push(`the worker found ${Atomics.load(a, 3)} counter values it had not written`);
    console.log(`counters at the marks and now: ${JSON.stringify(marks)} ${JSON.stringify(now)}; pings ${pings}`);
    console.log(bad.length === 0 ? 'PASS' : `FAIL: ${bad.join('; ')}`);
    Atomics.store(a, 2, 1);
    clearInterval(pinger);
    timers.forEach(clearInterval);
    server.close();
    server.closeAllConnections();
    if (child.connected)
      child.disconnect();
    await worker.terminate();
    process.exit(0);
  });
}

if (!isMainThread)
  runWorker();
else if (process.argv[2] === 'child')
  runChild();
else
  runMain(process.argv[2]);
