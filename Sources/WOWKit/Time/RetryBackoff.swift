/// How long a connection on a worse path than it could have waits before it tries the better one again (a
/// relayed connection its direct URIs, a failed-over one the path it left): the first try comes soon, as the
/// better path is often back or just a bit late; then the wait doubles with every try, up to 8 times `interval`
/// (`linking.direct_retry_s`).
public enum RetryBackoff {
    public static func wait(afterTries tries: Int, interval: Duration) -> Duration {
        tries == 0 ? min(.seconds(5), interval) : interval * (1 << min(tries - 1, 3))
    }
}
