//! One server client per persisted path in the whole cluster: the node holding the path's lease
//! runs it. A lease is a key with an expiry, taken with `SET NX PX` and renewed and released by
//! scripts that first check the holder, so a node never extends or deletes another's lease.
//! Taking a lease also takes a number from the path's epoch counter: the holder stamps it on
//! what its server client publishes, and nodes drop what carries an older one, so a holder that
//! was paused past its expiry cannot speak over the one that replaced it. One Redis decides, so
//! no quorum of several masters (Redlock) is involved.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Script};

/// How long a lease outlives its holder's last renewal.
pub(crate) const TTL: Duration = Duration::from_secs(5);
/// How often held leases are renewed and other nodes' leases checked for expiry: a path whose
/// holder died moves within `TTL + TICK`.
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// Takes the lease if it is free or already this node's; answers the epoch, 0 if another node
/// holds it. A new epoch is above `ARGV[3]`, the latest this node has heard of: a Redis that
/// restarted empty would otherwise count again from 1, below what the nodes remember, and they
/// would drop the new holder's messages as stale.
const ACQUIRE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local epoch = redis.call('INCR', KEYS[2])
if epoch <= tonumber(ARGV[3]) then
  epoch = tonumber(ARGV[3]) + 1
  redis.call('SET', KEYS[2], epoch)
end
return epoch
";

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Where a path's lease and epoch counter live.
pub(crate) struct LeaseKeys {
    pub(crate) owner: String,
    pub(crate) epoch: String,
}

pub(crate) struct Leases {
    holder: String,
    acquire: Script,
    renew: Script,
    release: Script,
}

impl Leases {
    pub(crate) fn new(holder: String) -> Leases {
        Leases {
            holder,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        }
    }

    /// The epoch of this node's lease, above `latest`, or `None` while another node holds it.
    pub(crate) async fn acquire(
        &self,
        connection: &mut MultiplexedConnection,
        keys: &LeaseKeys,
        latest: u64,
    ) -> RedisResult<Option<u64>> {
        let epoch: u64 = self
            .acquire
            .key(&keys.owner)
            .key(&keys.epoch)
            .arg(&self.holder)
            .arg(TTL.as_millis() as u64)
            .arg(latest)
            .invoke_async(connection)
            .await?;
        Ok((epoch > 0).then_some(epoch))
    }

    /// False if the lease is no longer this node's.
    pub(crate) async fn renew(
        &self,
        connection: &mut MultiplexedConnection,
        keys: &LeaseKeys,
    ) -> RedisResult<bool> {
        let renewed: u64 = self
            .renew
            .key(&keys.owner)
            .arg(&self.holder)
            .arg(TTL.as_millis() as u64)
            .invoke_async(connection)
            .await?;
        Ok(renewed > 0)
    }

    pub(crate) async fn release(
        &self,
        connection: &mut MultiplexedConnection,
        keys: &LeaseKeys,
    ) -> RedisResult<()> {
        let _: u64 = self
            .release
            .key(&keys.owner)
            .arg(&self.holder)
            .invoke_async(connection)
            .await?;
        Ok(())
    }
}
