package dev.kfn.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;

/**
 * A Kafka Streams contender of `kfn bench --brokers`; runs until SIGTERM.
 *
 * <pre>
 * java -jar kstreams-bench.jar MODE GUARANTEE BROKERS APPLICATION_ID IN OUT STATE_DIR
 *   MODE       map:   mapValues doing what functions/page-enricher does (parse the
 *                     PageEvent, add enriched_by, slow = duration > 5000, tag; Jackson)
 *              count: the seed's page-count stage: filter(duration > 100), re-key by
 *                     name (repartition topic APPLICATION_ID-rekey-repartition),
 *                     5 s tumbling windows without grace, count, to OUT
 *   GUARANTEE  at_least_once (commit.interval.ms 1000, as the seed app used) or
 *              exactly_once_v2 (Kafka Streams' default commit interval, 100 ms)
 * </pre>
 *
 * Everything else is Kafka Streams' default (one stream thread, record cache 10 MB).
 */
public final class Bench {
  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] args) throws Exception {
    if (args.length != 7) {
      System.err.println(
          "usage: Bench map|count at_least_once|exactly_once_v2 BROKERS APP_ID IN OUT STATE_DIR");
      System.exit(2);
    }
    String mode = args[0], guarantee = args[1], in = args[4], out = args[5];
    Properties p = new Properties();
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[2]);
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[3]);
    p.put(StreamsConfig.STATE_DIR_CONFIG, args[6]);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
    if (guarantee.equals(StreamsConfig.AT_LEAST_ONCE)) {
      p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    }
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put("consumer.auto.offset.reset", "earliest");

    StreamsBuilder b = new StreamsBuilder();
    KStream<String, String> events = b.stream(in, Consumed.with(Serdes.String(), Serdes.String()));
    switch (mode) {
      case "map" -> events.mapValues(Bench::enrich).to(out);
      case "count" ->
          events
              .filter((k, v) -> duration(v) > 100)
              .map((k, v) -> KeyValue.pair(name(v), v))
              .groupByKey(Grouped.as("rekey"))
              .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(5)))
              .count()
              .toStream()
              .map((w, n) -> KeyValue.pair(w.key() + "@" + w.window().start(), n))
              .to(out, Produced.with(Serdes.String(), Serdes.Long()));
      default -> {
        System.err.println("unknown mode " + mode);
        System.exit(2);
      }
    }

    KafkaStreams streams = new KafkaStreams(b.build(), p);
    CountDownLatch stopped = new CountDownLatch(1);
    streams.setUncaughtExceptionHandler(
        e -> {
          e.printStackTrace();
          System.exit(1);
          return null;
        });
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  streams.close(Duration.ofSeconds(10));
                  stopped.countDown();
                }));
    streams.start();
    stopped.await();
  }

  private static String enrich(String value) {
    try {
      ObjectNode page = (ObjectNode) JSON.readTree(value);
      page.put("enriched_by", "page-enricher v1");
      page.put("slow", page.get("duration").asLong() > 5000);
      page.put("tag", "demo");
      return JSON.writeValueAsString(page);
    } catch (Exception e) {
      throw new RuntimeException("not a PageEvent: " + value, e);
    }
  }

  private static JsonNode parse(String value) {
    try {
      return JSON.readTree(value);
    } catch (Exception e) {
      throw new RuntimeException("not a PageEvent: " + value, e);
    }
  }

  private static long duration(String value) {
    return parse(value).get("duration").asLong();
  }

  private static String name(String value) {
    return parse(value).get("name").asText();
  }
}
