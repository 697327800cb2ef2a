// The jvm case of tests/apps/run-apps.sh: a Java program with the state a real JVM service has.
//
//     java -Xmx512m -cp CLASSDIR JvmApp DIR
//
// - the heap: 400 int arrays of 256 KiB (100 MiB) and a HashMap of 200,000 entries, of known values;
// - a fixed thread pool (4 threads) fed batches of small tasks by a feeder thread; each task
//   checks its own result and counts in its thread's progress counter;
// - a JIT-hot loop (a thread summing squares, a million a round; each round checked against
//   the closed form);
// - DIR/mapped (4 MiB) mapped MAP_SHARED through a MappedByteBuffer, written with a pattern;
// - a child process (cat, through ProcessBuilder: pipes) that a thread sends a line every
//   50 ms and reads it back;
// - a ServerSocket on 127.0.0.1 (a free port, written to DIR/port) speaking just enough
//   HTTP/1.1 keep-alive: "GET /mark" (the body "request N on connection C"; the status
//   "200 OK" when the heap, the map and the mapping check out, else "500 " and the reasons)
//   records every counter (the test fetches it before the dump and after the restore on the
//   same connection); "GET /ping" answers "pong".
// Prints "READY" once all runs and the JIT loop is hot.
// SIGTERM: a shutdown hook checks the heap, the map, the mapping (its first 8 bytes must read
// "RESTORED", written to the file by the test after the restore: the mapping is still the
// file's), that two marks were taken and that every pool thread, the JIT loop and the cat
// round trips went on after the second one with no wrong result; then System.gc() (the
// collection counts must grow) and 256 MiB more allocated and kept, 1 GiB churned, all checked;
// writes "VERIFIED" at offset 8 of the mapping (the test reads it in the file); prints PASS
// or "FAIL: " and the reasons.
// APPS_CORRUPT=heap|map|mapping|pool|jit|child breaks that state when the second mark is
// taken (the test's check that each check can fail).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

public class JvmApp {
    static final int ARRAYS = 400, INTS = 1 << 16; // 400 x 256 KiB (below G1's humongous size)
    static final int MAP_ENTRIES = 200_000;
    static final int MAPPED_LEN = 4 << 20;
    static final int POOL = 4;
    static final String CORRUPT = System.getenv().getOrDefault("APPS_CORRUPT", "");

    static int[][] heap = new int[ARRAYS][];
    static HashMap<String, Long> map = new HashMap<>();
    static MappedByteBuffer mapped;
    static ExecutorService pool;
    static final AtomicLongArray progress = new AtomicLongArray(POOL);
    static final AtomicLong taskErrors = new AtomicLong();
    static final AtomicLong jitRounds = new AtomicLong(), jitErrors = new AtomicLong();
    static volatile boolean jitStop;
    static final AtomicLong catRounds = new AtomicLong(), catErrors = new AtomicLong();
    static Process cat;
    static final AtomicInteger connections = new AtomicInteger();
    static final List<long[]> marks = new ArrayList<>(); // per mark: pool x4, jit, cat
    static PrintStream out;

    static int heapValue(int a, int i) { return a * 7919 + i * 31; }
    static byte pattern(int j) { return (byte) (j * 13 + (j >> 12)); }

    static long sumSquares(long base, long n) { // the hot loop
        long s = 0;
        for (long i = base; i < base + n; i++)
            s += i * i;
        return s;
    }

    static long closedForm(long base, long n) { // sum of i^2 over [base, base+n), mod 2^64
        return squaresUpTo(base + n - 1).subtract(squaresUpTo(base - 1)).longValue();
    }

    static BigInteger squaresUpTo(long m) {
        BigInteger b = BigInteger.valueOf(m);
        return b.multiply(b.add(BigInteger.ONE)).multiply(b.shiftLeft(1).add(BigInteger.ONE))
                .divide(BigInteger.valueOf(6));
    }

    static List<String> checkData() {
        List<String> bad = new ArrayList<>();
        for (int a = 0; a < ARRAYS; a++)
            for (int i = 0; i < INTS; i++)
                if (heap[a][i] != heapValue(a, i)) {
                    bad.add("heap[" + a + "][" + i + "] = " + heap[a][i] + ", expected " + heapValue(a, i));
                    a = ARRAYS;
                    break;
                }
        if (map.size() != MAP_ENTRIES)
            bad.add("the map has " + map.size() + " entries, expected " + MAP_ENTRIES);
        for (int i = 0; i < MAP_ENTRIES; i++) {
            Long v = map.get("key-" + i);
            if (v == null || v != (long) i * i) {
                bad.add("map key-" + i + " = " + v);
                break;
            }
        }
        for (int j = 16; j < MAPPED_LEN; j++)
            if (mapped.get(j) != pattern(j)) {
                bad.add("mapping byte " + j + " = " + mapped.get(j) + ", expected " + pattern(j));
                break;
            }
        return bad;
    }

    static long[] counters() {
        long[] c = new long[POOL + 2];
        for (int k = 0; k < POOL; k++)
            c[k] = progress.get(k);
        c[POOL] = jitRounds.get();
        c[POOL + 1] = catRounds.get();
        return c;
    }

    static void corrupt() {
        switch (CORRUPT) {
        case "heap": heap[142][4711]++; break;
        case "map": map.remove("key-777"); break;
        case "mapping": mapped.put(MAPPED_LEN - 1, (byte) ~mapped.get(MAPPED_LEN - 1)); break;
        case "pool": pool.shutdownNow(); break;
        case "jit": jitStop = true; break;
        case "child": cat.destroyForcibly(); break;
        default: break;
        }
    }

    static void serve(Socket s) {
        int conn = connections.incrementAndGet();
        try (s) {
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.ISO_8859_1));
            OutputStream o = s.getOutputStream();
            for (int req = 1;; req++) {
                String line = in.readLine();
                if (line == null)
                    return;
                String path = line.split(" ").length > 1 ? line.split(" ")[1] : "";
                while ((line = in.readLine()) != null && !line.isEmpty())
                    ;
                String status = "200 OK", body;
                if (path.equals("/mark")) {
                    synchronized (marks) {
                        if (marks.size() == 1)
                            corrupt();
                        marks.add(counters());
                    }
                    List<String> bad = checkData();
                    if (!bad.isEmpty())
                        status = "500 " + String.join("; ", bad);
                    body = "request " + req + " on connection " + conn + "\n";
                } else if (path.equals("/ping")) {
                    body = "pong\n";
                } else {
                    status = "404 Not Found";
                    body = "no " + path + "\n";
                }
                byte[] b = body.getBytes(StandardCharsets.ISO_8859_1);
                o.write(("HTTP/1.1 " + status + "\r\nContent-Length: " + b.length + "\r\n\r\n")
                        .getBytes(StandardCharsets.ISO_8859_1));
                o.write(b);
                o.flush();
            }
        } catch (Exception e) {
            out.println("connection " + conn + ": " + e);
        }
    }

    static long gcCount() {
        long n = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans())
            n += Math.max(0, gc.getCollectionCount());
        return n;
    }

    static void verdict() {
        List<String> bad = checkData();
        byte[] mark = new byte[8];
        for (int j = 0; j < 8; j++)
            mark[j] = mapped.get(j);
        String m = new String(mark, StandardCharsets.ISO_8859_1);
        if (!m.equals("RESTORED"))
            bad.add("the mapping's first bytes read '" + m.replaceAll("[^ -~]", "?") + "', not RESTORED (written to the file after the restore)");
        long[] now = counters();
        if (marks.size() != 2) {
            bad.add(marks.size() + " marks taken, expected 2 (before the dump, after the restore)");
        } else {
            long[] before = marks.get(0), after = marks.get(1);
            String[] names = {"pool thread 0", "pool thread 1", "pool thread 2", "pool thread 3", "the JIT loop", "cat round trips"};
            for (int k = 0; k < now.length; k++)
                if (!(before[k] > 0 && now[k] > after[k]))
                    bad.add(names[k] + " did not go on after the restore: " + before[k] + " at the dump, " + after[k] + " after the restore, " + now[k] + " now");
        }
        if (taskErrors.get() != 0 || jitErrors.get() != 0 || catErrors.get() != 0)
            bad.add("wrong results: pool tasks " + taskErrors.get() + ", JIT rounds " + jitErrors.get() + ", cat round trips " + catErrors.get());
        long gc0 = gcCount();
        System.gc();
        long gc1 = gcCount();
        if (gc1 <= gc0)
            bad.add("System.gc() collected nothing: collection count " + gc0 + " -> " + gc1);
        List<long[]> more = new ArrayList<>();
        for (int i = 0; i < 1024; i++) { // 256 MiB kept
            long[] a = new long[1 << 15];
            a[0] = i;
            a[a.length - 1] = ~i;
            more.add(a);
        }
        long churn = 0;
        for (int i = 0; i < 4096; i++) { // 1 GiB churned
            byte[] t = new byte[1 << 18];
            t[i] = (byte) i;
            churn += t[i] & 0xff;
        }
        for (int i = 0; i < more.size(); i++)
            if (more.get(i)[0] != i || more.get(i)[(1 << 15) - 1] != ~i) {
                bad.add("allocated array " + i + " lost its values");
                break;
            }
        long gc2 = gcCount();
        if (gc2 <= gc1)
            bad.add("no collection while 1.25 GiB were allocated after the restore (count " + gc1 + " -> " + gc2 + ")");
        bad.addAll(checkData()); // the heap survived the collections
        byte[] v = "VERIFIED".getBytes(StandardCharsets.ISO_8859_1);
        for (int j = 0; j < 8; j++)
            mapped.put(8 + j, v[j]);
        mapped.force();
        out.println("counters at the marks and now: " + (marks.size() == 2 ? java.util.Arrays.toString(marks.get(0)) + " " + java.util.Arrays.toString(marks.get(1)) : "-")
                + " " + java.util.Arrays.toString(now) + "; collections " + gc0 + " " + gc1 + " " + gc2 + " (churn " + churn + ")");
        out.println(bad.isEmpty() ? "PASS" : "FAIL: " + String.join("; ", bad));
        out.flush();
    }

    public static void main(String[] args) throws Exception {
        out = System.out;
        Path dir = Path.of(args[0]);
        for (int a = 0; a < ARRAYS; a++) {
            heap[a] = new int[INTS];
            for (int i = 0; i < INTS; i++)
                heap[a][i] = heapValue(a, i);
        }
        for (int i = 0; i < MAP_ENTRIES; i++)
            map.put("key-" + i, (long) i * i);
        try (FileChannel ch = FileChannel.open(dir.resolve("mapped"), StandardOpenOption.CREATE,
                StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            mapped = ch.map(FileChannel.MapMode.READ_WRITE, 0, MAPPED_LEN);
        }
        for (int j = 0; j < MAPPED_LEN; j++)
            mapped.put(j, pattern(j));
        mapped.force();

        AtomicInteger threadNo = new AtomicInteger();
        pool = Executors.newFixedThreadPool(POOL, r -> {
            Thread t = new Thread(r, "pool-" + threadNo.getAndIncrement());
            t.setDaemon(true);
            return t;
        });
        Thread feeder = new Thread(() -> {
            try {
                for (long batch = 0; !pool.isShutdown(); batch++) {
                    List<Callable<Void>> tasks = new ArrayList<>();
                    for (int t = 0; t < 64; t++) {
                        final long seed = batch * 64 + t;
                        tasks.add(() -> {
                            long s = 0;
                            for (long i = 1; i <= 20000; i++)
                                s += i * (seed + 1);
                            if (s != 20000L * 20001 / 2 * (seed + 1))
                                taskErrors.incrementAndGet();
                            progress.incrementAndGet(Integer.parseInt(Thread.currentThread().getName().substring(5)));
                            Thread.sleep(1); // everyone gets tasks
                            return null;
                        });
                    }
                    for (Future<Void> f : pool.invokeAll(tasks))
                        f.get();
                    Thread.sleep(10);
                }
            } catch (Exception e) {
                out.println("feeder: " + e);
            }
        }, "feeder");
        feeder.setDaemon(true);
        feeder.start();

        Thread jit = new Thread(() -> {
            long base = 1;
            try {
                while (!jitStop) {
                    long n = 1_000_000;
                    if (sumSquares(base, n) != closedForm(base, n))
                        jitErrors.incrementAndGet();
                    base += n;
                    jitRounds.incrementAndGet();
                    Thread.sleep(5);
                }
            } catch (InterruptedException e) {
                return;
            }
        }, "jit-hot");
        jit.setDaemon(true);
        jit.start();

        cat = new ProcessBuilder("cat").redirectError(ProcessBuilder.Redirect.INHERIT).start();
        Thread catter = new Thread(() -> {
            try {
                PrintStream w = new PrintStream(cat.getOutputStream(), true);
                BufferedReader r = new BufferedReader(new InputStreamReader(cat.getInputStream()));
                for (long n = 1;; n++) {
                    w.println("line " + n);
                    String back = r.readLine();
                    if (back == null)
                        return;
                    if (!back.equals("line " + n))
                        catErrors.incrementAndGet();
                    catRounds.incrementAndGet();
                    Thread.sleep(50);
                }
            } catch (Exception e) {
                out.println("cat: " + e);
            }
        }, "cat-pipe");
        catter.setDaemon(true);
        catter.start();

        ServerSocket ss = new ServerSocket(0, 16, InetAddress.getByName("127.0.0.1"));
        Thread acceptor = new Thread(() -> {
            try {
                for (;;) {
                    Socket s = ss.accept();
                    Thread t = new Thread(() -> serve(s), "conn");
                    t.setDaemon(true);
                    t.start();
                }
            } catch (Exception e) {
                out.println("accept: " + e);
            }
        }, "acceptor");
        acceptor.setDaemon(true);
        acceptor.start();

        Runtime.getRuntime().addShutdownHook(new Thread(JvmApp::verdict, "verdict"));
        while (jitRounds.get() < 200 || catRounds.get() < 5)
            Thread.sleep(20);
        Path tmp = dir.resolve("port.tmp");
        Files.writeString(tmp, ss.getLocalPort() + "\n");
        Files.move(tmp, dir.resolve("port"), StandardCopyOption.ATOMIC_MOVE);
        out.println("READY pid " + ProcessHandle.current().pid() + " port " + ss.getLocalPort() + " cat " + cat.pid());
        out.flush();
        for (;;)
            Thread.sleep(1000);
    }
}
