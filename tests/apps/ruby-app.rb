# The ruby case of tests/apps/run-apps.sh: CRuby (its VM lock and timer thread, native threads,
# its mark-and-sweep, compacting collector) with threads, a Fiber, a child and a TCPServer.
#
#   ruby ruby-app.rb DIR
#
# A Hash of 500,000 entries ("k<i>" => f(i)); a Fiber generating a Fibonacci sequence mod
# 2^61-1 that a ticker thread resumes every 5 ms, checking each value against its own
# computation; 3 worker threads, each chaining SHA-256 digests (every round computed twice:
# the two must agree); a child (cat, through IO.popen) that a thread sends a numbered line to
# every 20 ms, checking each comes back; an HTTP server (TCPServer on 127.0.0.1, a free port
# written to DIR/port), keep-alive with no timeouts, a thread per connection: "GET /mark" checks
# the Hash, records every counter and answers "request N on connection C" (200), or 500 and
# the reasons; "GET /ping" answers "pong".
#
# Prints "READY <pid of cat>" once all runs.
# SIGTERM: checks two marks were taken, that the ticker (the Fiber), the workers and the round
# trips with cat went on after the second with no wrong result, the Hash is intact, then runs
# the collector (GC.start and GC.compact) with 256 MiB more kept and 1 GiB churned; prints PASS or
# "FAIL: " and the reasons. APPS_CORRUPT=hash|fiber|child breaks that state when the second
# mark is taken (the test's check that each check can fail).
require 'socket'
require 'digest'

$stdout.sync = true
DIR = ARGV.fetch(0)
CORRUPT = ENV['APPS_CORRUPT'].to_s
ENTRIES = 500_000
MOD = (1 << 61) - 1

def value(i) = (i * 2_654_435_761 ^ 0x5a17) & 0xffffffff

TABLE = {}
ENTRIES.times { |i| TABLE["k#{i}"] = value(i) }

def table_problem
  bad = 0
  ENTRIES.times { |i| bad += 1 unless TABLE["k#{i}"] == value(i) }
  return nil if TABLE.size == ENTRIES && bad.zero?

  "hash: #{TABLE.size} entries, #{bad} wrong"
end

LOCK = Mutex.new
$c = Hash.new(0) # counters: ticks, fiber_bad, trips, trip_errs, rounds<N>, bad_rounds
$stop = false
$marks = []

threads = []
threads << Thread.new do
  fib = Fiber.new do
    a = 0
    b = 1
    loop do
      Fiber.yield a
      a, b = b, (a + b) % MOD
    end
  end
  a = 0
  b = 1
  until $stop || $fiber_stop
    got = fib.resume
    LOCK.synchronize do
      $c[:ticks] += 1
      $c[:fiber_bad] += 1 unless got == a
    end
    a, b = b, (a + b) % MOD
    sleep 0.005
  end
end

Digest::SHA256.hexdigest('') # loaded before the workers race to autoload it
3.times do |w|
  threads << Thread.new do
    x = "seed #{w}"
    until $stop
      d1 = Digest::SHA256.hexdigest(x)
      d2 = Digest::SHA256.hexdigest(x.dup)
      LOCK.synchronize do
        $c[:"rounds#{w}"] += 1
        $c[:bad_rounds] += 1 unless d1 == d2
      end
      x = d1
      sleep 0.001
    end
  end
end

$cat = IO.popen(['cat'], 'r+')
threads << Thread.new do
  n = 0
  until $stop
    n += 1
    $cat.puts n
    $cat.flush
    line = $cat.gets
    LOCK.synchronize do
      if line == "#{n}\n"
        $c[:trips] += 1
      else
        $c[:trip_errs] += 1
      end
    end
    sleep 0.02
  end
rescue IOError, SystemCallError
  LOCK.synchronize { $c[:trip_errs] += 1 }
end

def counters = LOCK.synchronize { $c.dup }

def corrupt
  case CORRUPT
  when 'hash' then TABLE['k4711'] = 0
  when 'fiber' then $fiber_stop = true
  when 'child' then Process.kill('KILL', $cat.pid)
  end
end

def answer(path, conn, n)
  case path
  when '/ping' then ['200 OK', 'pong']
  when '/mark'
    corrupt if $marks.size == 1
    why = table_problem
    return ['500 Internal Server Error', "#{why}\n"] if why

    $marks << counters
    ['200 OK', "request #{n} on connection #{conn}\n"]
  else ['404 Not Found', "no\n"]
  end
end

server = TCPServer.new('127.0.0.1', 0)
File.write(File.join(DIR, 'port'), server.addr[1].to_s)
Thread.new do
  conn = 0
  loop do
    sock = server.accept
    conn += 1
    Thread.new(sock, conn) do |s, c|
      n = 0
      while (line = s.gets)
        path = line.split[1]
        while (h = s.gets) && h != "\r\n"; end
        n += 1
        status, body = answer(path, c, n)
        s.write("HTTP/1.1 #{status}\r\nContent-Type: text/plain\r\nContent-Length: #{body.bytesize}\r\n\r\n#{body}")
      end
      s.close
    end
  end
end

term_r, term_w = IO.pipe
Signal.trap('TERM') { term_w.write_nonblock('x') }
sleep 0.2
puts "READY #{$cat.pid}"

term_r.read(1)
sleep 0.3
now = counters
why = []
if $marks.size == 2
  m2 = $marks[1]
  why << "ticks #{now[:ticks]}, #{m2[:ticks]} at the second mark" unless now[:ticks] > m2[:ticks] + 20
  why << "#{now[:fiber_bad]} wrong values from the Fiber" unless now[:fiber_bad].zero?
  why << "cat round trips #{now[:trips]}, #{m2[:trips]} at the second mark" unless now[:trips] > m2[:trips] + 5
  why << "#{now[:trip_errs]} wrong round trips with cat" unless now[:trip_errs].zero?
  3.times do |w|
    k = :"rounds#{w}"
    why << "worker #{w}: #{now[k]} rounds, #{m2[k]} at the second mark" unless now[k] > m2[k]
  end
  why << 'workers computed different digests' unless now[:bad_rounds].zero?
  t = table_problem
  why << t if t
  keep = Array.new(256) { |i| i.chr * (1 << 20) }
  1024.times { |i| (i % 256).chr * (1 << 20) }
  GC.start(full_mark: true, immediate_sweep: true)
  GC.compact if GC.respond_to?(:compact)
  sum = keep.each_with_index.sum { |s, i| s.getbyte(s.bytesize - 1) == i && s.bytesize == 1 << 20 ? 1 : 0 }
  why << "after the collection #{sum} of 256 kept strings intact" unless sum == 256
  t = table_problem
  why << "after the collection: #{t}" if t
else
  why << "#{$marks.size} marks taken, expected 2"
end
$stop = true
puts why.empty? ? 'PASS' : "FAIL: #{why.join('; ')}"
exit!(0)
