package warden.algos.host;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.Consumer;

/**
 * Node-side pull from the command line, the JVM twin of {@code warden-algos pull}:
 *
 * <pre>
 * java -cp CLASSPATH warden.algos.host.PullCli pull --plan PLAN.properties --dest DIR
 *      [--trusted-keys FILE] [--retries N] [--backoff-ms MS] [--lock-timeout-s S]
 *      [--idle-timeout-s S]
 * java -cp CLASSPATH warden.algos.host.PullCli rollback --dest DIR
 * </pre>
 *
 * With {@code --trusted-keys FILE} (or {@code $WARDEN_TRUSTED_KEYS}, as for {@code warden-algos
 * pull}) only a release those keys signed is installed ({@link ReleaseTrust}); without, a one-line
 * warning on stderr says releases are installed unsigned.
 *
 * The plan is what {@code warden-algos release presign --channel C --properties} prints. {@code
 * pull} prints one line, {@code status release_id bytes attempts} (status {@code current} or
 * {@code installed}); {@code rollback} prints {@code rolled-back release_id}. Progress and errors
 * go to stderr. Exit status: 0 done, 1 the pull failed (the installed release was kept), 2 usage.
 */
public final class PullCli {
  /** warden_algos/delivery/cli.py's warning, word for word. */
  static final String UNPINNED_WARNING =
      "no pinned release keys (--trusted-keys or WARDEN_TRUSTED_KEYS): releases are installed"
          + " unsigned, so anyone who can write to the bucket can run code on this node";

  private PullCli() {}

  public static void main(String[] args) throws InterruptedException {
    try {
      System.exit(run(args));
    } catch (IllegalArgumentException | ArrayIndexOutOfBoundsException e) {
      System.err.println("PullCli: " + e.getMessage() + "\n" + usage());
      System.exit(2);
    }
  }

  private static int run(String[] args) throws InterruptedException {
    if (args.length == 0) {
      throw new IllegalArgumentException("say pull or rollback");
    }
    Path plan = null;
    Path dest = null;
    Path trustedKeys = null;
    int retries = 5;
    Duration backoff = Duration.ofMillis(500);
    Duration lockTimeout = Duration.ofSeconds(600);
    Duration idleTimeout = Duration.ofSeconds(60);
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--plan" -> plan = Path.of(args[++i]);
        case "--dest" -> dest = Path.of(args[++i]);
        case "--trusted-keys" -> trustedKeys = Path.of(args[++i]);
        case "--retries" -> retries = Integer.parseInt(args[++i]);
        case "--backoff-ms" -> backoff = Duration.ofMillis(Long.parseLong(args[++i]));
        case "--lock-timeout-s" -> lockTimeout = seconds(args[++i]);
        case "--idle-timeout-s" -> idleTimeout = seconds(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    if (dest == null) {
      throw new IllegalArgumentException("--dest is required");
    }
    String fromEnvironment = System.getenv("WARDEN_TRUSTED_KEYS");
    if (trustedKeys == null && fromEnvironment != null && !fromEnvironment.isEmpty()) {
      trustedKeys = Path.of(fromEnvironment);
    }
    if (!args[0].equals("pull") && !args[0].equals("rollback")) {
      throw new IllegalArgumentException("unknown command " + args[0]);
    }
    if (args[0].equals("pull") && plan == null) {
      throw new IllegalArgumentException("pull needs --plan");
    }
    Consumer<String> log = line -> System.err.println("pull: " + line);
    try {
      if (args[0].equals("rollback")) {
        Puller puller = new Puller(retries, backoff, lockTimeout, idleTimeout, log);
        System.out.println("rolled-back " + puller.rollbackLocal(dest));
        return 0;
      }
      if (trustedKeys == null) {
        log.accept("warning: " + UNPINNED_WARNING);
      }
      Puller puller = new Puller(retries, backoff, lockTimeout, idleTimeout, trustedKeys, log);
      PullResult result = puller.pull(PullPlan.read(plan), dest);
      System.err.println("pull: executable " + result.executable());
      System.out.println(result.line());
      return 0;
    } catch (PullException | IOException | RuntimeException e) {
      // one line, never a stack trace: whatever the plan or the bucket held, the install was kept
      System.err.println("pull: error: " + Backoff.describe(e));
      return 1;
    }
  }

  private static Duration seconds(String value) {
    return Duration.ofMillis(Math.round(Double.parseDouble(value) * 1000));
  }

  private static String usage() {
    return "usage: PullCli pull --plan FILE --dest DIR [--trusted-keys FILE] [--retries N]"
        + " [--backoff-ms MS] [--lock-timeout-s S] [--idle-timeout-s S]\n"
        + "       PullCli rollback --dest DIR";
  }
}
