-- A claimed notification records which notifier process holds it: the key
-- of a session-level advisory lock (class 0x4E5A) that process holds for as
-- long as it is connected, and when (database time) it was claimed. When the
-- process dies (SIGKILL, OOM, a crash) its session ends, the lock is gone,
-- and any replica may claim the notification at once instead of waiting for
-- lease_until. After a server restart every lock is gone for everyone, so a
-- claim made before the server started is left to lease_until.
-- NULL owner: only the time lease.
ALTER TABLE notifications ADD COLUMN lease_owner integer;
ALTER TABLE notifications ADD COLUMN claimed_at timestamptz;
