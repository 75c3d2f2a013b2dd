package warden.algos.host;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import warden.algos.thrift.DetectPayload;
import warden.algos.thrift.Request;
import warden.algos.thrift.Response;

/**
 * Per-request latency seen by a Java caller: one-shot vs pooled serve mode, JSON vs Thrift
 * compact (lists, and packed arrays), for 1,000 and 100,000 points.
 *
 * <pre>
 * java -cp CP warden.algos.host.HostBenchmark [--command CMD] [--points 1000,100000]
 *      [--pooled N] [--one-shot N] [--quick]
 * </pre>
 *
 * A Thrift timing covers everything the host does: build the frame from a {@link Request}, the
 * round trip, and decoding the {@link Response} into objects. A JSON timing covers the bytes only
 * (this harness parses no JSON), so it flatters JSON on the host side.
 */
public final class HostBenchmark {
  private static final long T0 = 1_700_000_000L;

  private HostBenchmark() {}

  private record Case(String label, WireFormat format, boolean packed) {}

  public static void main(String[] args) throws Exception {
    String command = System.getenv().getOrDefault("WARDEN_ALGOS_COMMAND", "warden-algos");
    int[] sizes = {1_000, 100_000};
    int pooledSmall = 2_000;
    int oneShot = 20;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--command" -> command = args[++i];
        case "--points" -> sizes = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
        case "--pooled" -> pooledSmall = Integer.parseInt(args[++i]);
        case "--one-shot" -> oneShot = Integer.parseInt(args[++i]);
        case "--quick" -> {
          pooledSmall = 200;
          oneShot = 5;
        }
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    List<Case> cases =
        List.of(
            new Case("json", WireFormat.JSON, false),
            new Case("thrift-compact", WireFormat.THRIFT_COMPACT, false),
            new Case("thrift-compact packed", WireFormat.THRIFT_COMPACT, true));
    System.out.printf(
        "JVM host -> %s, ksigma with its band, one caller thread, 1 pooled worker%n", command);
    System.out.printf(
        "%-8s %-22s %-9s %7s %10s %10s %10s %10s%n",
        "points", "format", "mode", "calls", "median ms", "p90 ms", "p99 ms", "bytes in");
    for (int n : sizes) {
      // big requests cost more per call; keep each row at a similar wall time
      int pooled = Math.max(50, (int) ((long) pooledSmall * 1_000 / n));
      Map<String, Double> pooledMedians = new LinkedHashMap<>();
      List<String> ratios = new ArrayList<>();
      for (Case c : cases) {
        Request request = request(n, c.packed);
        byte[] body = c.format.isThrift() ? c.format.encode(request) : json(request);
        Executable executable = Executable.of(command, c.format).withStderr(line -> {});
        double[] pooledMs;
        try (WorkerPool pool = new WorkerPool(executable, 1, Duration.ofSeconds(120))) {
          Call call = callOn(c.format, request, body, pool::callRaw);
          for (int i = 0; i < Math.max(5, pooled / 10); i++) {
            call.run(); // start-up, JIT, caches
          }
          pooledMs = time(call, pooled);
        }
        OneShotInvoker invoker = new OneShotInvoker(executable);
        Call once = callOn(c.format, request, body, bytes -> invoker.invokeRaw(bytes, Duration.ofSeconds(120)));
        once.run();
        double[] oneShotMs = time(once, oneShot);
        row(n, c.label, "pooled", pooledMs, body.length);
        row(n, c.label, "one-shot", oneShotMs, body.length);
        pooledMedians.put(c.label, percentile(pooledMs, 50));
        ratios.add(
            String.format(
                "%s one-shot/pooled %.0fx", c.label, percentile(oneShotMs, 50) / percentile(pooledMs, 50)));
      }
      System.out.printf(
          "  %d points: pooled median json/thrift-compact %.2fx, json/packed %.2fx; %s%n",
          n,
          pooledMedians.get("json") / pooledMedians.get("thrift-compact"),
          pooledMedians.get("json") / pooledMedians.get("thrift-compact packed"),
          String.join("; ", ratios));
    }
  }

  @FunctionalInterface
  private interface Transport {
    byte[] send(byte[] body);
  }

  @FunctionalInterface
  private interface Call {
    void run();
  }

  /** Thrift: encode, send, decode (the full host cost). JSON: send the prepared bytes. */
  private static Call callOn(WireFormat format, Request request, byte[] jsonBody, Transport transport) {
    if (!format.isThrift()) {
      return () -> check(transport.send(jsonBody).length > 0);
    }
    return () -> {
      Response response = Responses.decode(format, transport.send(format.encode(request)));
      // read the band the way a caller would: primitive arrays from packed fields, lists otherwise
      int points =
          response.getDetect().isSetExpected_packed()
              ? PackedArrays.doubles(response.getDetect().bufferForExpected_packed()).length
              : response.getDetect().getExpectedSize();
      check(points > 0);
    };
  }

  private static void check(boolean ok) {
    if (!ok) {
      throw new IllegalStateException("empty answer");
    }
  }

  private static double[] time(Call call, int count) {
    double[] ms = new double[count];
    for (int i = 0; i < count; i++) {
      long start = System.nanoTime();
      call.run();
      ms[i] = (System.nanoTime() - start) / 1e6;
    }
    Arrays.sort(ms);
    return ms;
  }

  private static double percentile(double[] sorted, double p) {
    int index = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, index))];
  }

  private static String fmt(double ms) {
    return String.format("%.3f", ms);
  }

  private static void row(int n, String label, String mode, double[] ms, int bytes) {
    System.out.printf(
        "%-8d %-22s %-9s %7d %10s %10s %10s %10d%n",
        n, label, mode, ms.length, fmt(percentile(ms, 50)), fmt(percentile(ms, 90)),
        fmt(percentile(ms, 99)), bytes);
  }

  static Request request(int n, boolean packed) {
    Random random = new Random(42);
    DetectPayload payload = new DetectPayload().setDimensions(List.of("host=bench"));
    if (packed) {
      long[] times = new long[n];
      double[] values = new double[n];
      for (int i = 0; i < n; i++) {
        times[i] = T0 + 60L * i;
        values[i] = value(i, random);
      }
      payload.setTimestamps_packed(PackedArrays.pack(times)).setValues_packed(PackedArrays.pack(values));
    } else {
      List<Long> times = new ArrayList<>(n);
      List<Double> values = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        times.add(T0 + 60L * i);
        values.add(value(i, random));
      }
      payload.setTimestamps(times).setValues(values);
    }
    return new Request()
        .setInterface_name("detect")
        .setAlgorithm("ksigma")
        .setParams_json("{\"window\": 60}")
        .setRequest_id("bench")
        .setPacked_arrays(packed)
        .setDetect(payload);
  }

  private static double value(int i, Random random) {
    return 100 + 5 * Math.sin(i / 50.0) + random.nextGaussian() + (i % 997 == 500 ? 40 : 0);
  }

  /** The JSON form of a list-form detect request (Double.toString is valid JSON for finite values). */
  static byte[] json(Request request) {
    DetectPayload detect = request.getDetect();
    StringBuilder out = new StringBuilder(detect.getTimestampsSize() * 32);
    out.append("{\"interface\":\"detect\",\"algorithm\":\"").append(request.getAlgorithm())
        .append("\",\"params\":").append(request.getParams_json())
        .append(",\"request_id\":\"").append(request.getRequest_id())
        .append("\",\"detect\":{\"dimensions\":[\"host=bench\"],\"timestamps\":[");
    join(out, detect.getTimestamps());
    out.append("],\"values\":[");
    join(out, detect.getValues());
    out.append("]}}");
    return out.toString().getBytes(StandardCharsets.UTF_8);
  }

  private static void join(StringBuilder out, List<?> items) {
    for (int i = 0; i < items.size(); i++) {
      if (i > 0) {
        out.append(',');
      }
      out.append(items.get(i));
    }
  }
}
