//! Which nodes have clients on a path: a sorted set per path, `{prefix}:presence:{pathId}`, of
//! node ids scored by when their entry expires. Each node refreshes its entries with the lease
//! tick, so a node that died drops out within [`TTL`] without anyone cleaning up after it. The
//! holder of a persisted path reads it once its own clients are gone: it keeps the server
//! client running while another node still has clients there. Times are Redis's own clock
//! (`TIME` in the scripts), so nodes whose clocks disagree still agree on what expired.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Script};

/// How long an entry outlives its node's last refresh: as long as a lease, so a dead holder's
/// successor and a dead node's absence are noticed together.
pub(crate) const TTL: Duration = crate::lease::TTL;

/// Keys refreshed by one script call, so a node with many paths sends few, bounded commands.
const CHUNK: usize = 256;

/// Marks `ARGV[1]` present on every path of `KEYS` until `ARGV[2]` ms from now.
const MARK: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', key, ARGV[2])
end
return #KEYS
";

/// How many nodes other than `ARGV[1]` have unexpired entries on the path, dropping expired ones.
const OTHERS: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  count = count - 1
end
return count
";

pub(crate) struct Presence {
    node: String,
    mark: Script,
    others: Script,
}

impl Presence {
    pub(crate) fn new(node: String) -> Presence {
        Presence {
            node,
            mark: Script::new(MARK),
            others: Script::new(OTHERS),
        }
    }

    /// Marks this node present on the paths whose presence keys are `keys`.
    pub(crate) async fn mark(
        &self,
        connection: &mut MultiplexedConnection,
        keys: &[String],
    ) -> RedisResult<()> {
        for chunk in keys.chunks(CHUNK) {
            let mut invocation = self.mark.prepare_invoke();
            for key in chunk {
                invocation.key(key);
            }
            let _: u64 = invocation
                .arg(&self.node)
                .arg(TTL.as_millis() as u64)
                .invoke_async(connection)
                .await?;
        }
        Ok(())
    }

    /// This node has no client left on the path of `key`.
    pub(crate) async fn leave(
        &self,
        connection: &mut MultiplexedConnection,
        key: &str,
    ) -> RedisResult<()> {
        redis::cmd("ZREM")
            .arg(key)
            .arg(&self.node)
            .query_async(connection)
            .await
    }

    /// Whether another node has clients on the path of `key`.
    pub(crate) async fn elsewhere(
        &self,
        connection: &mut MultiplexedConnection,
        key: &str,
    ) -> RedisResult<bool> {
        let others: u64 = self
            .others
            .key(key)
            .arg(&self.node)
            .invoke_async(connection)
            .await?;
        Ok(others > 0)
    }
}
