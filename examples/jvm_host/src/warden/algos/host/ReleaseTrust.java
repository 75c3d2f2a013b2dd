package warden.algos.host;

import java.nio.file.Path;

/**
 * What a node that pins release keys checks before it downloads anything, in
 * warden_algos/delivery/trust.py's order and words: the channel's signed statement first (a
 * trusted key, this channel, not expired, not older than the newest this node accepted, and the
 * plan agrees with it), then the release record's exact bytes must hash to what the statement
 * says and the release's own signature must verify and agree. Only then are the artifact's
 * sha256 and size, which the signed statement fixes, used to download and check the bytes.
 */
final class ReleaseTrust {
  private final TrustedKeys keys;

  ReleaseTrust(TrustedKeys keys) {
    this.keys = keys;
  }

  /** The plan's channel statement, checked; the plan's own fields must agree with it. */
  ChannelStatement verifyChannel(PullPlan plan) throws PullException {
    String channel = plan.channel();
    if (!PullPlan.CHANNEL.matcher(channel).matches()) {
      throw new PullException(
          "the plan names no valid channel ('" + Fields.shorten(channel) + "'): refusing it");
    }
    String what = "channel '" + channel + "'";
    if (plan.channelStatement() == null) {
      throw new PullException(
          what
              + " is unsigned and this node pins release keys: refusing it (sign releases with"
              + " WARDEN_SIGNING_KEY when promoting, or `release refresh` the channel)");
    }
    Envelope envelope = Envelope.fromPlan(plan.channelStatement(), what + "'s statement");
    byte[] payload = keys.verify(envelope, ChannelStatement.TYPE, what + "'s statement");
    ChannelStatement statement = ChannelStatement.parse(payload, what + "'s signed statement");
    if (!statement.channel().equals(channel)) {
      throw new PullException(
          what
              + " carries a statement signed for channel '"
              + statement.channel()
              + "': refusing it");
    }
    if (UtcTime.passed(statement.expires())) {
      throw new PullException(
          what
              + "'s statement (signed "
              + statement.signedAt()
              + ") expired at "
              + statement.expires()
              + ": a stale pointer (a freeze?); the channel must be re-signed (release refresh)");
    }
    if (!plan.releaseId().equals(statement.releaseId())
        || !plan.sha256().equals(statement.sha256())
        || plan.size() != statement.size()
        || !plan.mode().equals(statement.mode())) {
      throw new PullException(what + "'s pointer disagrees with its signed statement: refusing it");
    }
    return statement;
  }

  /** Refuses a statement older than the newest this node accepted for its channel. */
  static void checkNotOlder(Path dest, ChannelStatement statement) throws PullException {
    ChannelState.Accepted last = ChannelState.load(dest).last(statement.channel());
    if (last != null && statement.sequence() < last.sequence()) {
      throw new PullException(
          "channel '"
              + statement.channel()
              + "' points to "
              + statement.releaseId()
              + " with a statement (sequence "
              + statement.sequence()
              + ", signed "
              + statement.signedAt()
              + ") older than the one this node accepted (sequence "
              + last.sequence()
              + ", "
              + last.releaseId()
              + ", signed "
              + last.signedAt()
              + "): a rollback attempt? refusing it; a real rollback is a new signed move"
              + " (release rollback)");
    }
  }

  /**
   * The release record's bytes are the ones the statement names, and the release's own signature
   * (the plan's {@code release_signature}) verifies and agrees.
   */
  void verifyRelease(ChannelStatement statement, byte[] record, String releaseSignature)
      throws PullException {
    String what = "release " + statement.releaseId();
    String digest = Sha256.of(record);
    if (!digest.equals(statement.recordSha256())) {
      throw new PullException(
          what
              + ": the release record's sha256 "
              + digest.substring(0, 12)
              + "... is not the signed "
              + statement.recordSha256().substring(0, 12)
              + "... (tampered record): refusing it");
    }
    if (releaseSignature == null) {
      throw new PullException(
          what + " has no release signature (release.dsse.json): refusing it");
    }
    Envelope envelope = Envelope.fromPlan(releaseSignature, what + "'s signature");
    byte[] payload = keys.verify(envelope, ReleaseStatement.TYPE, what + "'s signature");
    ReleaseStatement signed = ReleaseStatement.parse(payload, what + "'s signed statement");
    if (!signed.releaseId().equals(statement.releaseId())
        || !signed.recordSha256().equals(digest)
        || !signed.sha256().equals(statement.sha256())
        || signed.size() != statement.size()
        || !signed.mode().equals(statement.mode())) {
      throw new PullException(what + ": its signature is for other bytes: refusing it");
    }
  }
}
