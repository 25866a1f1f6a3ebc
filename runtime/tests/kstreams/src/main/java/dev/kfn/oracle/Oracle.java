package dev.kfn.oracle;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.stream.Stream;

import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindowedKStream;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.TimeWindowedKStream;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Kafka Streams as a test oracle for kfn's windowed analytics.
 *
 * <pre>
 *   java -jar oracle.jar tumbling SIZE_MS GRACE_MS             changes|final
 *   java -jar oracle.jar hopping  SIZE_MS ADVANCE_MS GRACE_MS  changes|final
 *   java -jar oracle.jar sliding  TIME_DIFFERENCE_MS GRACE_MS  changes|final
 *   java -jar oracle.jar session  GAP_MS GRACE_MS              changes|final
 * </pre>
 * An optional leading {@code --retention MS} sets the store retention
 * ({@code Materialized.withRetention}); without it Kafka's default applies.
 *
 * stdin: one record a line, {@code KEY TIMESTAMP_MS}, piped in order through
 * {@code stream -> groupByKey -> windowedBy(spec) -> count -> toStream} in a
 * TopologyTestDriver (record cache off, so every update is forwarded).
 *
 * <p>stdout: {@code changes}: the final state of the windowed table, one line per
 * window {@code KEY START END COUNT}, sorted by key, start, end (windows whose last
 * update was a delete, i.e. sessions merged away, are left out). {@code final}
 * (emitStrategy onWindowClose): every emitted record in emission order, same format.
 * Last line: {@code dropped N}, the task-level {@code dropped-records-total} metric.
 * START/END are {@code Windowed.window().start()/end()}: end exclusive for tumbling
 * and hopping, inclusive for sliding and session.
 *
 * <p>Exit code 2 with a message on stderr for bad arguments or input, 1 if Kafka
 * Streams itself fails.
 */
public final class Oracle {
    private static final String INPUT = "input";
    private static final String OUTPUT = "output";
    private static final String SEP = "\u0000";

    /** A bad command line or input line: exit 2 with this message. */
    static final class Usage extends Exception {
        Usage(final String message) {
            super(message);
        }
    }

    private static final String USAGE = String.join("\n",
        "usage: oracle [--retention MS] SPEC changes|final, SPEC one of",
        "       oracle tumbling SIZE_MS GRACE_MS changes|final",
        "       oracle hopping SIZE_MS ADVANCE_MS GRACE_MS changes|final",
        "       oracle sliding TIME_DIFFERENCE_MS GRACE_MS changes|final",
        "       oracle session GAP_MS GRACE_MS changes|final",
        "stdin: one record a line, 'KEY TIMESTAMP_MS'");

    public static void main(final String[] args) {
        final PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        try {
            run(args, out);
            out.flush();
        } catch (final Usage e) {
            System.err.println("oracle: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(2);
        } catch (final Exception e) {
            System.err.println("oracle: Kafka Streams failed: " + e);
            e.printStackTrace(System.err);
            System.exit(1);
        }
    }

    private static long parseMs(final String what, final String s) throws Usage {
        try {
            final long v = Long.parseLong(s);
            if (v < 0) {
                throw new Usage(what + " must be >= 0, got " + s);
            }
            return v;
        } catch (final NumberFormatException e) {
            throw new Usage(what + " must be an integer number of milliseconds, got '" + s + "'");
        }
    }

    static void run(String[] args, final PrintStream out) throws Exception {
        // Optional: --retention MS, the window/session store's retention (Materialized
        // withRetention). Default: Kafka's, size+grace (tumbling, hopping), 2*diff+grace
        // (sliding), gap+grace (session).
        Long retention = null;
        if (args.length >= 1 && args[0].equals("--retention")) {
            if (args.length < 2) {
                throw new Usage("--retention needs a number of milliseconds");
            }
            retention = parseMs("--retention", args[1]);
            args = java.util.Arrays.copyOfRange(args, 2, args.length);
        }
        if (args.length == 0) {
            throw new Usage("missing window spec");
        }
        final String kind = args[0];
        final int params;
        switch (kind) {
            case "tumbling":
            case "sliding":
            case "session":
                params = 2;
                break;
            case "hopping":
                params = 3;
                break;
            default:
                throw new Usage("unknown window kind '" + kind + "'");
        }
        if (args.length != params + 2) {
            throw new Usage(kind + " takes " + params + " numbers and an emit mode, got "
                + (args.length - 1) + " arguments");
        }
        final boolean emitFinal;
        switch (args[params + 1]) {
            case "changes":
                emitFinal = false;
                break;
            case "final":
                emitFinal = true;
                break;
            default:
                throw new Usage("emit mode must be 'changes' or 'final', got '" + args[params + 1] + "'");
        }

        final StreamsBuilder builder = new StreamsBuilder();
        final KGroupedStream<String, String> grouped = builder
            .stream(INPUT, Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey();
        final KTable<Windowed<String>, Long> counts;
        try {
            switch (kind) {
                case "tumbling":
                case "hopping": {
                    final long size = parseMs("SIZE_MS", args[1]);
                    final long advance = kind.equals("hopping") ? parseMs("ADVANCE_MS", args[2]) : size;
                    final long grace = parseMs("GRACE_MS", args[params]);
                    TimeWindows windows = TimeWindows.ofSizeAndGrace(Duration.ofMillis(size), Duration.ofMillis(grace));
                    if (kind.equals("hopping")) {
                        windows = windows.advanceBy(Duration.ofMillis(advance));
                    }
                    TimeWindowedKStream<String, String> w = grouped.windowedBy(windows);
                    if (emitFinal) {
                        w = w.emitStrategy(EmitStrategy.onWindowClose());
                    }
                    counts = w.count(withRetention(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("counts")
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()).withCachingDisabled(), retention));
                    break;
                }
                case "sliding": {
                    final long diff = parseMs("TIME_DIFFERENCE_MS", args[1]);
                    final long grace = parseMs("GRACE_MS", args[2]);
                    TimeWindowedKStream<String, String> w = grouped.windowedBy(
                        SlidingWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(diff), Duration.ofMillis(grace)));
                    if (emitFinal) {
                        w = w.emitStrategy(EmitStrategy.onWindowClose());
                    }
                    counts = w.count(withRetention(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("counts")
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()).withCachingDisabled(), retention));
                    break;
                }
                default: {
                    final long gap = parseMs("GAP_MS", args[1]);
                    final long grace = parseMs("GRACE_MS", args[2]);
                    SessionWindowedKStream<String, String> w = grouped.windowedBy(
                        SessionWindows.ofInactivityGapAndGrace(Duration.ofMillis(gap), Duration.ofMillis(grace)));
                    if (emitFinal) {
                        w = w.emitStrategy(EmitStrategy.onWindowClose());
                    }
                    counts = w.count(withRetention(Materialized.<String, Long, SessionStore<Bytes, byte[]>>as("counts")
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()).withCachingDisabled(), retention));
                    break;
                }
            }
        } catch (final IllegalArgumentException e) {
            // Kafka Streams' own checks: size 0, advance 0 or > size, gap 0, retention
            // below size+grace, ...
            throw new Usage("invalid " + kind + " window: " + e.getMessage());
        }
        // Windowed key -> "key\0start\0end" so the output needs no windowed serde (and
        // the session end, which TimeWindowedSerde would not carry, survives).
        counts.toStream()
            .map((wk, count) -> KeyValue.pair(
                wk.key() + SEP + wk.window().start() + SEP + wk.window().end(), count))
            .to(OUTPUT, Produced.with(Serdes.String(), Serdes.Long()));
        final Topology topology = builder.build();

        final List<String> keys = new ArrayList<>();
        final List<Long> timestamps = new ArrayList<>();
        readInput(keys, timestamps);

        final Path stateDir = Files.createTempDirectory("kfn-kstreams-oracle-");
        final Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "kfn-oracle");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        // Every update is forwarded, not just the last one per cache flush.
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // onWindowClose emission is throttled to once per this many wall-clock ms
        // (default 1000; AbstractKStreamTimeWindowAggregateProcessor and
        // KStreamSessionWindowAggregate read it); the driver's mock clock never moves,
        // so with 1000 only the first record would ever trigger an emission.
        // TopologyTestDriver already puts 0 here if absent (since Kafka 3.8); set it
        // anyway so the oracle does not depend on that.
        props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);

        final List<String[]> emitted = new ArrayList<>();
        final long dropped;
        try (TopologyTestDriver driver = new TopologyTestDriver(topology, props)) {
            final TestInputTopic<String, String> input =
                driver.createInputTopic(INPUT, new StringSerializer(), new StringSerializer());
            final TestOutputTopic<String, Long> output =
                driver.createOutputTopic(OUTPUT, new StringDeserializer(), new LongDeserializer());
            for (int i = 0; i < keys.size(); i++) {
                // A non-null value: sliding windows skip records with a null value.
                input.pipeInput(keys.get(i), "1", timestamps.get(i));
                for (final TestRecord<String, Long> r : output.readRecordsToList()) {
                    final String[] k = r.key().split(SEP, -1);
                    emitted.add(new String[] {k[0], k[1], k[2], r.value() == null ? null : r.value().toString()});
                }
            }
            dropped = droppedRecords(driver.metrics());
        } finally {
            deleteRecursively(stateDir);
        }

        if (emitFinal) {
            for (final String[] e : emitted) {
                out.println(e[0] + " " + e[1] + " " + e[2] + " " + (e[3] == null ? "null" : e[3]));
            }
        } else {
            final TreeMap<String[], String> table = new TreeMap<>(
                Comparator.<String[], String>comparing(w -> w[0])
                    .thenComparingLong(w -> Long.parseLong(w[1]))
                    .thenComparingLong(w -> Long.parseLong(w[2])));
            for (final String[] e : emitted) {
                final String[] window = {e[0], e[1], e[2]};
                if (e[3] == null) {
                    table.remove(window);
                } else {
                    table.put(window, e[3]);
                }
            }
            for (final Map.Entry<String[], String> e : table.entrySet()) {
                out.println(e.getKey()[0] + " " + e.getKey()[1] + " " + e.getKey()[2] + " " + e.getValue());
            }
        }
        out.println("dropped " + dropped);
    }

    private static <S extends org.apache.kafka.streams.processor.StateStore> Materialized<String, Long, S> withRetention(
            final Materialized<String, Long, S> m, final Long retention) {
        return retention == null ? m : m.withRetention(Duration.ofMillis(retention));
    }

    private static void readInput(final List<String> keys, final List<Long> timestamps) throws IOException, Usage {
        final BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        int n = 0;
        while ((line = in.readLine()) != null) {
            n++;
            final String t = line.trim();
            if (t.isEmpty()) {
                continue;
            }
            final String[] parts = t.split("\\s+");
            if (parts.length != 2) {
                throw new Usage("stdin line " + n + ": expected 'KEY TIMESTAMP_MS', got '" + line + "'");
            }
            final long ts;
            try {
                ts = Long.parseLong(parts[1]);
            } catch (final NumberFormatException e) {
                throw new Usage("stdin line " + n + ": timestamp must be an integer, got '" + parts[1] + "'");
            }
            if (ts < 0) {
                // Kafka rejects negative record timestamps before any windowing.
                throw new Usage("stdin line " + n + ": timestamp must be >= 0, got " + ts);
            }
            keys.add(parts[0]);
            timestamps.add(ts);
        }
    }

    /** The task-level dropped-records-total (stream-task-metrics), summed over tasks. */
    private static long droppedRecords(final Map<MetricName, ? extends Metric> metrics) {
        double total = 0;
        boolean found = false;
        for (final Map.Entry<MetricName, ? extends Metric> e : metrics.entrySet()) {
            final MetricName name = e.getKey();
            if (name.name().equals("dropped-records-total") && name.group().equals("stream-task-metrics")) {
                total += ((Number) e.getValue().metricValue()).doubleValue();
                found = true;
            }
        }
        if (!found) {
            throw new IllegalStateException("no stream-task-metrics dropped-records-total metric");
        }
        return Math.round(total);
    }

    private static void deleteRecursively(final Path dir) {
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (final IOException ignored) {
            // a temp dir left behind is harmless
        }
    }
}
