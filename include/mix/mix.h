/*
 * mix — a lock-free mail index engine.
 *
 * mix keeps, for each mailbox, the message index (UID, flags, keywords,
 * modification sequence, extension data) and the transaction log that
 * makes every change durable.  It is linked into multi-threaded mail
 * servers: any number of threads read without locks, and all changes to one
 * mailbox go through one writer thread owned by the engine.
 *
 * Threads and contexts
 * --------------------
 * - Every function may be called from any thread unless its comment says
 *   otherwise.  A thread is registered with the engine's RCU domain on its
 *   first call into mix and unregistered when it exits; callers never call
 *   liburcu themselves.
 * - Reads: mix_read_lock() starts a read-side section.  Inside it,
 *   mix_index_snap() returns the newest published snapshot, which stays
 *   valid and unchanged until the matching mix_read_unlock().  Sections
 *   nest and never block the writer, but a thread must not sleep for long
 *   inside one (memory of replaced snapshots is held until it leaves, and
 *   the mailboxes' publishes are spaced meanwhile), and
 *   must not wait for a commit inside one (mix_txn_commit() returns
 *   MIX_EDEADLK when called inside a section).
 * - Writes: mix_txn_begin() .. mix_txn_commit() on any thread.  The
 *   transaction is applied by whoever holds the mailbox's writer role:
 *   the writer thread, or the committing thread itself when the role was
 *   free (one applier at a time, in commit order); the committer waits
 *   (or gets a callback) until it is published to readers and, with
 *   MIX_DURABILITY_SYNC, on disk.  A long read-side section never stops
 *   commits: publishes are spaced instead while it holds memory
 *   (docs/design.md "Coalescing"), and it is reported (read_stall).
 *
 * Return conventions
 * ------------------
 * Fallible functions return int: 0 on success, a negative value on error.
 * System errors are -errno; library errors are the MIX_E* codes below,
 * which never collide with errno values.  mix_strerror() names both, and
 * mix_last_error() returns a message for the calling thread's last error
 * that names the file, field or offset involved.  Every function's
 * comment lists the codes it returns and the state an error leaves
 * (tools/check-header.sh keeps this header and docs/api.md agreeing), its
 * calling context, and who owns what it returns.  The words used:
 * - "Any thread": any thread, inside or outside a read-side section.
 * - "Section": inside the read-side section that obtained the snapshot,
 *   on that thread; or on a view's snapshot (mix_view_snap) by the thread
 *   using the view, with no section needed.
 * - "Owner thread": the one thread using that transaction, view or
 *   watcher at a time (hand them over with your own synchronisation).
 * - "Not inside a read-side section": the call may wait (for the writer,
 *   a lock, a grace period); inside a section it would wait for itself.
 * - "Not from a callback": not from a mix_commit_fn, mix_warning_fn or
 *   mix_read_stall_fn, which run on threads mix is waiting on.
 *
 * Caveats
 * -------
 * - fork(): from any thread outside a read-side section; the child may
 *   use nothing it inherited (engine, indexes, views, snapshots, ...),
 *   not even to close it, and starts an engine of its own.  The parent's
 *   write locks stay held by the child's copies of their descriptors
 *   until it execs or exits.  See "Fork" below and docs/api.md "Fork".
 * - Long read-side sections: never block the writer, but every snapshot
 *   replaced meanwhile stays in memory until the section ends, and past
 *   a bound the writers space their publishes (commits get slower, not
 *   stuck; mix_engine_stats batches_held, read_stall).  Keep sections to
 *   one short piece of work; hold a view, not a section, across network
 *   waits.
 * - Signal handlers: no mix function is async-signal-safe (they
 *   allocate, take mutexes, register threads with RCU).  Call none from a
 *   signal handler, not even mix_read_lock(); set a flag and act on it
 *   from a thread.
 * - File systems: an index directory must be on a local POSIX file
 *   system (ext4, xfs, btrfs, tmpfs for tests).  mix relies on
 *   open-file-description locks (fcntl F_OFD_SETLK) for its one-writer
 *   rule, on fdatasync/fsync and rename + directory fsync for
 *   durability, on coherent shared mmap of mix.index between processes
 *   and on the kernel's boot id (/proc/sys/kernel/random/boot_id) to
 *   tell a process crash from a power cut (docs/reliability.md).  NFS,
 *   SMB and other network or FUSE file systems do not give all of these
 *   (locks across hosts, mmap coherence, rename durability): use them at
 *   your own risk, and never open one index from two hosts.
 * - Durability: MIX_DURABILITY_NONE commits survive a process crash, not
 *   a power cut; a failed write or sync poisons the index (MIX_EPANIC
 *   until it is reopened), a full disk does not (-ENOSPC, then retry).
 * - Thread exit: a thread that used mix is unregistered when it exits;
 *   it must not exit inside a read-side section.
 *
 * See docs/api.md for an overview and docs/format.md for the files.
 */
#ifndef MIX_MIX_H
#define MIX_MIX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MIX_API __attribute__((visibility("default")))
#else
#define MIX_API
#endif

/* ---- errors ---------------------------------------------------------- */

enum mix_error {
	MIX_EBASE = 100000,
	/* a file is corrupt; the message names file, field and offset */
	MIX_ECORRUPT = -(MIX_EBASE + 1),
	/* an argument is invalid (bad UID range, unknown extension, ...) */
	MIX_EINVAL = -(MIX_EBASE + 2),
	/* another process owns the index for writing */
	MIX_ELOCKED = -(MIX_EBASE + 3),
	/* a write could not be made durable; the index refuses further
	 * writes until it is closed and reopened */
	MIX_EPANIC = -(MIX_EBASE + 4),
	/* the index was opened READONLY */
	MIX_EREADONLY = -(MIX_EBASE + 5),
	/* file written by a newer major version or another byte order */
	MIX_EVERSION = -(MIX_EBASE + 6),
	/* no such index (open without MIX_OPEN_CREATE) */
	MIX_ENOTFOUND = -(MIX_EBASE + 7),
	/* the call would wait inside a read-side section */
	MIX_EDEADLK = -(MIX_EBASE + 8),
	/* a limit was reached (UIDs exhausted, too many keywords, ...) */
	MIX_ELIMIT = -(MIX_EBASE + 9),
	/* the engine or index is shutting down; reserved: no call returns
	 * it yet (docs/api.md "Errors") */
	MIX_ESHUTDOWN = -(MIX_EBASE + 10),
};

/* Name of an error code (MIX_E* or -errno): returns a static string,
 * "unknown error" for a value that is neither.  Any thread, also from a
 * callback; cannot fail. */
MIX_API const char *mix_strerror(int err);

/* Returns the calling thread's message for its last failed call, or ""
 * if none; calls that succeed do not clear it.  The string is mix's, per
 * thread, valid until the thread's next call into mix.  Any thread;
 * cannot fail. */
MIX_API const char *mix_last_error(void);

/* ---- engine ---------------------------------------------------------- */

struct mix_engine;

/* Called with one message per problem that open or recovery repaired or
 * worked around (a torn log tail that was cut off, a rebuilt index) — from
 * the thread that called mix_index_open() — and for a checkpoint or
 * rotation that failed after a batch — from the writer thread.  Must not
 * call into mix. */
typedef void mix_warning_fn(void *ctx, const char *message);

/* A read-side section (mix_read_lock .. mix_read_unlock) that lasted
 * read_stall_ms or more while a grace period waited for it: snapshots
 * replaced since cannot be freed, and the writer spaces the publishes
 * of every index to bound that memory (docs/design.md "Reclamation").
 * Reported once per stalled grace period.  Allocated by mix for the
 * callback: it may grow at its end in a minor version (docs/api.md
 * "ABI"). */
struct mix_read_stall {
	uint64_t waited_ms;     /* how long the grace period has waited */
	unsigned readers;       /* threads inside a section now */
	int tids[8];            /* kernel thread ids of up to 8 of them */
	uint64_t snapshot_heap_bytes; /* as in mix_engine_stats */
};
/* Called from a writer (or committing) thread; must be short and must
 * not call into mix. */
typedef void mix_read_stall_fn(void *ctx, const struct mix_read_stall *stall);

/* Engine configuration: always start from mix_engine_config_init() (or
 * pass NULL for the defaults), so fields added later in the reserved
 * space get their defaults (docs/api.md "ABI"). */
struct mix_engine_config {
	/* writer threads; each open index belongs to exactly one (default 1) */
	unsigned writer_threads;
	/* the log is checkpointed and rotated when it passes this size in
	 * bytes (default 4 MiB; at least 4 KiB, at most 1 GiB) */
	uint64_t log_rotate_size;
	/* most transactions waiting for one writer; committers beyond it
	 * wait (default 4096) */
	unsigned queue_max;
	/* expunge history kept for QRESYNC, in UID ranges (default
	 * 100000; 0 = unbounded); older expunges are forgotten and
	 * mix_snap_expunged_since() then says it cannot answer for them */
	uint32_t expunge_history_max;
	/* a writable open of an index that another process writes waits up
	 * to this long for its lock (default 0: MIX_ELOCKED at once) */
	unsigned lock_timeout_ms;
	/* optional; see mix_warning_fn */
	mix_warning_fn *warning;
	void *warning_ctx;
	/* a grace period held this long by a read-side section is a stall:
	 * counted in mix_engine_stats (read_stalls) and reported to
	 * read_stall (default 5000; 0: never) */
	unsigned read_stall_ms;
	/* optional; see mix_read_stall_fn */
	mix_read_stall_fn *read_stall;
	void *read_stall_ctx;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[8];
};

/* Fill *cfg with the defaults, every field (those added in later
 * versions too: always start from this, docs/api.md "ABI").  Any thread;
 * cannot fail. */
MIX_API void mix_engine_config_init(struct mix_engine_config *cfg);

/* Create an engine and start its writer threads.  cfg may be NULL for the
 * defaults; it is copied.  Returns 0 (*engine_r set; the caller owns the
 * engine until mix_engine_free), MIX_EINVAL (a config value out of range)
 * or -errno (thread creation, memory); on error *engine_r is NULL and
 * nothing is left running.  Any thread, not from a callback. */
MIX_API int mix_engine_create(const struct mix_engine_config *cfg,
			      struct mix_engine **engine_r);

/* Stop the writer threads and free the engine.  Every index must be
 * closed first; this waits for the memory of closed indexes to be freed
 * (a grace period: it waits for read-side sections in progress).  Returns 0 (*engine set to NULL) or MIX_EINVAL (an index
 * is still open: nothing is freed, *engine kept).  Any thread, not inside
 * a read-side section (it joins the writer threads), not from a
 * callback. */
MIX_API int mix_engine_free(struct mix_engine **engine);

/* Counters of the engine's writers since it was created, copied into
 * *stats_r.  Each writer keeps its own (the read path keeps none); the
 * sum is read with relaxed loads, so it may be a few operations behind.
 * Any thread; cannot fail. */
#define MIX_BATCH_BUCKETS 12
struct mix_engine_stats {
	uint64_t commits;       /* transactions completed */
	uint64_t batches;       /* batches written and published */
	uint64_t fsyncs;        /* fdatasync calls on logs */
	uint64_t bytes_logged;  /* bytes appended to logs */
	uint64_t checkpoints;   /* mix.index files written */
	uint64_t checkpoint_failures; /* failed checkpoints/rotations (each
				       * also reported to the warning
				       * callback; retried after the next
				       * batch) */
	/* batches by size: [k] counts batches of 2^k .. 2^(k+1)-1
	 * transactions (the last bucket: 2^11 and more) */
	uint64_t batch_size_hist[MIX_BATCH_BUCKETS];
	/* process-wide: snapshots freed after their grace period, and heap
	 * bytes held by copied chunks of live snapshots */
	uint64_t snapshots_freed;
	uint64_t snapshot_heap_bytes;
	/* batches applied by a committing thread that found the writer
	 * role free, not by the writer thread (docs/design.md "The writer
	 * role"); included in batches */
	uint64_t batches_by_committer;
	/* batches held back because replaced snapshots waited too long for
	 * a grace period (publishes spaced: docs/design.md "Reclamation") */
	uint64_t batches_held;
	/* grace periods that waited read_stall_ms or more for a read-side
	 * section, and how long the one in progress has waited (0: none) */
	uint64_t read_stalls;
	uint64_t read_stall_ms;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[16];
};
MIX_API void mix_engine_stats(struct mix_engine *engine,
			      struct mix_engine_stats *stats_r);

/* Latency of commits since the engine started, from histograms the
 * writers keep (12.5% resolution): VISIBLE = from the committer handing
 * the transaction over to the publish that made it visible to readers;
 * ACK = to the writer waking the committer (after fdatasync for SYNC). */
enum mix_latency_kind {
	MIX_LATENCY_VISIBLE,
	MIX_LATENCY_ACK,
};
struct mix_latency {
	uint64_t count;
	uint64_t p50_ns, p99_ns, p999_ns, max_ns;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[4];
};
/* Fill *latency_r for kind.  Returns 0 or MIX_EINVAL (unknown kind;
 * *latency_r untouched).  Any thread. */
MIX_API int mix_engine_latency(struct mix_engine *engine,
			       enum mix_latency_kind kind,
			       struct mix_latency *latency_r);

/* ---- indexes --------------------------------------------------------- */

struct mix_index;

enum mix_open_flags {
	/* create the index if the directory holds none */
	MIX_OPEN_CREATE = 0x01,
	/* read only: no writer, no lock; see docs/api.md */
	MIX_OPEN_READONLY = 0x02,
	/* discard any index in the directory and create a new, empty one
	 * whose modseqs continue above the old one's (a new indexid) */
	MIX_OPEN_RECREATE = 0x04,
	/* recover what is valid from a damaged index instead of refusing
	 * it: skip damaged log ranges (docs/format.md §3.4), transactions
	 * that no longer apply and gaps in the log chain, and report each
	 * through the warning callback and mix_open_info (salvage_*).  A
	 * writable salvage checkpoints the result, so the next normal open
	 * is clean.  Use it when an open failed with MIX_ECORRUPT and the
	 * operator chose to keep what can be kept (mixctl salvage). */
	MIX_OPEN_SALVAGE = 0x08,
};

/* What open found and repaired (mix_index_open_info). */
struct mix_open_info {
	/* bytes of a torn transaction cut from the tail of the log */
	uint64_t dropped_bytes;
	/* the log file and offset where the cut was made (0 if none) */
	uint32_t dropped_file_seq;
	uint32_t dropped_offset;
	/* mix.index failed verification and was rebuilt from the logs */
	int rebuilt;
	/* transactions replayed from the log at open */
	uint64_t replayed_txns;
	/* the index was created by this open */
	int created;
	/* mix.index.log and mix.index.log.2 were both missing (or older
	 * than mix.index's checkpoint): whatever was logged after the
	 * checkpoint is lost; new changes continue above every modseq the
	 * lost logs can have issued (docs/reliability.md) */
	int logs_missing;
	/* MIX_OPEN_SALVAGE skipped something: bytes of damaged or
	 * unreachable log data, and transactions that no longer applied
	 * (each range was reported through the warning callback) */
	int salvaged;
	uint64_t salvage_skipped_bytes;
	uint32_t salvage_skipped_txns;
	/* a writable open after a crash: how many UIDs next_uid skipped,
	 * because transactions the crash lost may have handed them out
	 * (format.md §2.7; at most a few million, see docs/reliability.md) */
	uint32_t uids_skipped;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[8];
};

/* Open the index in directory dir (which must exist).  Recovery runs here:
 * mix.index is verified and the log replayed.  A torn transaction at the
 * tail of the log is cut off and reported through the warning callback
 * and mix_index_open_info(); nothing before it is lost.  A writable open
 * takes the index's lock and continues in a new log file.  On a full
 * disk it still opens (its checkpoint of what recovery replayed waits
 * for the first commit, which fails with -ENOSPC until there is room),
 * unless it must change a name first: creating, MIX_OPEN_SALVAGE,
 * adopting the next log of a rotation cut short (docs/api.md).
 * Opening twice: a writable open of a directory this engine already has
 * open for writing (any spelling of the path; MIX_OPEN_CREATE or no flag)
 * returns the same index (*index_r is the same pointer) with one more
 * reference: nothing is opened or recovered again, mix_index_open_info()
 * and the warnings are the first open's, every handle sees every commit
 * at once, and each open needs its own mix_index_close().  Read-only
 * opens are never shared (each is a follower of its own).  Calls opening
 * the same directory at once from several threads wait for each other.
 * (docs/api.md "Opening an index twice")
 * Returns 0 (*index_r set; the caller owns the handle until
 * mix_index_close); MIX_EINVAL (NULL engine or dir, unknown flags,
 * MIX_OPEN_READONLY with CREATE or RECREATE); MIX_ENOTFOUND (no index,
 * no MIX_OPEN_CREATE); MIX_ECORRUPT, MIX_EVERSION (message names file
 * and field); MIX_ELOCKED (another process writes it: message names its
 * pid; or another engine of this process has it open for writing, or
 * MIX_OPEN_RECREATE / MIX_OPEN_SALVAGE of a directory this engine has
 * open: message says which); MIX_ELIMIT (the indexid or log file_seq
 * would overflow the modseq); MIX_EPANIC (the write that continues
 * next_uid after a crash failed); -errno.  On error *index_r is NULL
 * and nothing stays open or locked.  Any thread, not inside a read-side
 * section (recovery waits for the writer and for locks), not from a
 * callback. */
MIX_API int mix_index_open(struct mix_engine *engine, const char *dir,
			   unsigned flags, struct mix_index **index_r);

/* Copy what open found into *info_r.  Any thread; cannot fail. */
MIX_API void mix_index_open_info(struct mix_index *index,
				 struct mix_open_info *info_r);

/* Wait for queued transactions, checkpoint, close the files and release
 * the lock (the directory may be opened again at once), and free the
 * index's memory after a grace period, on the engine's reclaim thread:
 * a read-side section held elsewhere delays that free, never the close.
 * Sets *index to NULL.  A handle of an index opened twice (see
 * mix_index_open) only drops its reference while others remain: 0, and
 * the index stays open for them, views and watchers included; the last
 * close does what follows.  Returns 0 or the error of the final
 * checkpoint (the index is closed either way; nothing acknowledged is
 * lost); MIX_EINVAL while views or watchers of it are open or it is
 * attached to a mailbox list (mix_list_attach), -ENOMEM
 * (nothing is closed then, *index is kept).  No transaction of the
 * index may be open.  Any thread, not inside a read-side section (it
 * waits for the writer), not from a callback. */
MIX_API int mix_index_close(struct mix_index **index);

/* Reclamation counters of one index, copied into *stats_r: snapshots
 * still alive (the current one, those held by views and those waiting
 * for a grace period) and what has been freed.  Any thread (takes a
 * mutex the read path never takes); cannot fail. */
struct mix_index_stats {
	uint32_t snapshots_live;
	uint64_t snapshots_freed;
	uint64_t objects_freed;   /* chunks, layouts, ... of dead snapshots */
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[4];
};
MIX_API void mix_index_stats(struct mix_index *index,
			     struct mix_index_stats *stats_r);

/* Register extension name (1..63 bytes) with a per-record data size
 * (0..1024 bytes, 0 = header only), record alignment (1, 2, 4 or 8) and a
 * header data size (0..65536).  If the index already has it, the sizes
 * must match, and so must the alignment when records have data (a
 * header-only extension has no records to align: its alignment is not
 * compared).  Returns its id (>= MIX_EXT_FIRST) in *ext_id_r.  Goes
 * through the writer like a transaction (it is logged).  Returns 0;
 * MIX_EINVAL (bad name or sizes; a name the index has with other sizes;
 * names starting with "mix." are the engine's); MIX_EDEADLK (inside a
 * read-side section; nothing done); MIX_EREADONLY; MIX_EPANIC;
 * MIX_ELIMIT (no room for another extension in the record); -errno.  On
 * error nothing is registered.  Any thread, not inside a read-side
 * section, not from a callback. */
MIX_API int mix_index_ext_register(struct mix_index *index, const char *name,
				   uint16_t record_size, uint16_t record_align,
				   uint32_t hdr_size, uint32_t *ext_id_r);

/* mix_index_ext_register_flags: flags. */
enum mix_ext_flags {
	/* modseq-neutral: a change of the extension's record or header
	 * data raises neither the message's modseq nor HIGHESTMODSEQ (data
	 * no IMAP client sees: caches, backend bookkeeping).  Fixed at
	 * registration (docs/condstore.md "What raises a modseq"). */
	MIX_EXT_FLAG_NO_MODSEQ = 0x01,
};

/* mix_index_ext_register with flags (enum mix_ext_flags; 0 is the same
 * as mix_index_ext_register).  Registering a name the index has
 * succeeds only if the sizes and MIX_EXT_FLAG_NO_MODSEQ match
 * (MIX_EINVAL otherwise, nothing changed).  A neutral registration also
 * registers the engine's extension "mix.neutral" (docs/format.md §2.8)
 * the first time, in the same logged transaction; registering raises
 * HIGHESTMODSEQ as any new extension does.  Any thread, not inside a
 * read-side section, not from a commit callback; waits for the writer.
 * Returns 0 (*ext_id_r set); MIX_EINVAL (bad name, sizes or flags;
 * names starting with "mix." are the engine's); MIX_ELIMIT (a neutral
 * extension's id would be 2048 or more, or the record would pass the
 * format's size); MIX_EDEADLK (inside a read-side section);
 * MIX_EREADONLY; MIX_EPANIC; MIX_ECORRUPT (the index's mix.neutral
 * extension has the wrong header size); -errno.  On error nothing is
 * registered. */
MIX_API int mix_index_ext_register_flags(struct mix_index *index,
					 const char *name,
					 uint16_t record_size,
					 uint16_t record_align,
					 uint32_t hdr_size, unsigned flags,
					 uint32_t *ext_id_r);

/* Ids of the built-in extensions; registered ones start at MIX_EXT_FIRST. */
#define MIX_EXT_MODSEQ   0u
#define MIX_EXT_KEYWORDS 1u
#define MIX_EXT_FIRST    2u

/* ---- messages -------------------------------------------------------- */

/* System flags (IMAP), as in the record's flags byte. */
enum mix_flag {
	MIX_FLAG_ANSWERED = 0x01,
	MIX_FLAG_FLAGGED  = 0x02,
	MIX_FLAG_DELETED  = 0x04,
	MIX_FLAG_SEEN     = 0x08,
	MIX_FLAG_DRAFT    = 0x10,
	MIX_FLAG_RECENT   = 0x20,
	/* index-internal: the backend's flags are behind the index's */
	MIX_FLAG_DIRTY    = 0x80,
	MIX_FLAGS_ALL     = 0xbf,
};

#define MIX_MAX_KEYWORDS   4096u   /* per index */
#define MIX_MAX_KEYWORD_LEN 255u   /* bytes, without the NUL */

/* A UID range.  Fixed layout: it never grows. */
struct mix_uid_range {
	uint32_t first;
	uint32_t last;    /* inclusive; first <= last */
};

/* ---- transactions ---------------------------------------------------- */

struct mix_txn;

enum mix_modify {
	MIX_MODIFY_ADD,
	MIX_MODIFY_REMOVE,
	MIX_MODIFY_REPLACE,
};

enum mix_durability {
	/* acknowledged once visible to readers; in the page cache */
	MIX_DURABILITY_NONE = 0,
	/* acknowledged once fdatasync()ed */
	MIX_DURABILITY_SYNC = 1,
};

struct mix_commit_result {
	/* the transaction's modseq; for a transaction that changed nothing
	 * a client can see (nothing at all, or only internal flags such as
	 * DIRTY: docs/condstore.md), the highest modseq of the snapshot it
	 * was checked against, unchanged */
	uint64_t modseq;
	/* UIDs given to the first and last appended message (0, 0 if
	 * none); contiguous unless the transaction raised next_uid between
	 * two appends */
	uint32_t first_uid;
	uint32_t last_uid;
	/* 1 if nothing changed (all its operations were no-ops) */
	int no_changes;
	/* CONDSTORE: UIDs that conditional operations left unchanged
	 * because their modseq was above UNCHANGEDSINCE (RFC 7162 MODIFIED),
	 * sorted; malloc'd, free with mix_commit_result_free().  NULL, 0 if
	 * none.  In a mix_commit_fn callback: valid during the call only. */
	struct mix_uid_range *modified;
	uint32_t modified_count;
	/* Only with mix_txn_want_changed(): the UIDs whose flags or
	 * keywords this transaction changed in a way a client sees (no-ops
	 * and DIRTY-only changes are not listed), that still exist after
	 * it; each now has modseq as its modseq (FETCH (FLAGS MODSEQ)).
	 * Sorted, merged, malloc'd like modified; NULL, 0 if none or not
	 * asked for.  For one conditional STORE, disjoint from modified
	 * (a message an earlier operation of the same transaction changed
	 * is in both when a later conditional one then skips it). */
	struct mix_uid_range *changed;
	uint32_t changed_count;
	/* With mix_txn_expunge_deleted() or mix_txn_want_changed(): the
	 * UIDs the transaction's expunge operations actually removed.
	 * Sorted, merged, malloc'd like modified; NULL, 0 if none. */
	struct mix_uid_range *expunged;
	uint32_t expunged_count;
	/* mix_txn_claim_recent(): the UIDs this claim got (\Recent for
	 * this session only), recent_first..recent_last inclusive; 0, 0
	 * when another claim had them or no message arrived since.  Some
	 * may be expunged already. */
	uint32_t recent_first;
	uint32_t recent_last;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[4];
};

/* Free what a commit result owns (the MODIFIED, changed and expunged
 * sets) and set those pointers to NULL.  Any thread; cannot fail. */
MIX_API void mix_commit_result_free(struct mix_commit_result *result);

/* Start a transaction on index.  Returns 0 (*txn_r set: the caller owns
 * it until mix_txn_commit, mix_txn_commit_async or mix_txn_abort, and
 * must end it before mix_index_close), MIX_EREADONLY, MIX_EPANIC (the
 * index is poisoned) or -ENOMEM.  Any thread, any context; the
 * transaction is then used by one thread at a time (its owner thread). */
MIX_API int mix_txn_begin(struct mix_index *index, struct mix_txn **txn_r);

/* Append a message with flags and keywords (NULL-terminated list of names,
 * or NULL).  Its UID is assigned at commit, in order of the appends.  The
 * number of the append in this transaction (0, 1, ...) is returned in
 * *append_r (may be NULL).  Returns 0, MIX_EINVAL (bad flag, bad keyword
 * name), MIX_ELIMIT (too many appends, keywords or bytes in one
 * transaction) or -ENOMEM. Owner thread, any context (building a transaction never waits).  On
 * error the operation is not added; the transaction can still be
 * committed or aborted. */
MIX_API int mix_txn_append(struct mix_txn *txn, uint8_t flags,
			   const char *const *keywords, uint32_t *append_r);

/* Set extension data of the message appended as number append (size must
 * equal the extension's record size).  Operations apply in the order they
 * were added, this one too; data given right after its append (before
 * any other kind of operation) is stored with the append and logged with
 * it as one run, the fast path for bulk appends.  Returns 0, MIX_EINVAL
 * (no such append, unknown extension, wrong size), MIX_ELIMIT (the
 * transaction's size limit), -ENOMEM. Owner thread, any context (building a transaction never waits).  On
 * error the operation is not added; the transaction can still be
 * committed or aborted. */
MIX_API int mix_txn_append_ext(struct mix_txn *txn, uint32_t append,
			       uint32_t ext_id, const void *data, size_t size);

/* Change the system flags of the messages in ranges (UIDs that do not
 * exist are ignored).  Returns 0, MIX_EINVAL (bad flags, modify or
 * range), MIX_ELIMIT (the transaction's size limit: 4 GiB of operation
 * data), -ENOMEM. Owner thread, any context (building a transaction never waits).  On
 * error the operation is not added; the transaction can still be
 * committed or aborted. */
MIX_API int mix_txn_flags(struct mix_txn *txn,
			  const struct mix_uid_range *ranges, size_t count,
			  enum mix_modify modify, uint8_t flags);

/* CONDSTORE STORE (UNCHANGEDSINCE unchangedsince), RFC 7162 §3.1.3:
 * like mix_txn_flags / mix_txn_keywords, but the writer checks each
 * message when it applies the operation, atomically with every other
 * commit: a message whose modseq is above unchangedsince is left
 * unchanged and its UID goes into the result's MODIFIED set.  A message
 * changed by an earlier operation of the same transaction has the
 * transaction's modseq and so fails the check.  Returns as the
 * unconditional calls: 0, MIX_EINVAL, MIX_ELIMIT, -ENOMEM. Owner thread, any context (building a transaction never waits).  On
 * error the operation is not added; the transaction can still be
 * committed or aborted. */
MIX_API int mix_txn_flags_unchangedsince(struct mix_txn *txn,
					 const struct mix_uid_range *ranges,
					 size_t count, enum mix_modify modify,
					 uint8_t flags,
					 uint64_t unchangedsince);
MIX_API int mix_txn_keywords_unchangedsince(struct mix_txn *txn,
					    const struct mix_uid_range *ranges,
					    size_t count,
					    enum mix_modify modify,
					    const char *const *keywords,
					    uint64_t unchangedsince);

/* Change keywords (NULL-terminated names; with MIX_MODIFY_REPLACE an
 * empty list or NULL clears all).  Returns 0, MIX_EINVAL (bad name,
 * modify or range), MIX_ELIMIT (more than MIX_MAX_KEYWORDS names, or the
 * transaction's size limit), -ENOMEM. Owner thread, any context (building a transaction never waits).  On
 * error the operation is not added; the transaction can still be
 * committed or aborted. */
MIX_API int mix_txn_keywords(struct mix_txn *txn,
			     const struct mix_uid_range *ranges, size_t count,
			     enum mix_modify modify,
			     const char *const *keywords);

/* Expunge the messages in ranges (unconditionally; see
 * mix_txn_expunge_deleted for IMAP EXPUNGE).  Returns 0, MIX_EINVAL (bad
 * range), MIX_ELIMIT (the transaction's size limit), -ENOMEM. Owner thread, any context (building a transaction never waits).  On
 * error the operation is not added; the transaction can still be
 * committed or aborted. */
MIX_API int mix_txn_expunge(struct mix_txn *txn,
			    const struct mix_uid_range *ranges, size_t count);

/* IMAP EXPUNGE (ranges NULL, count 0) and UID EXPUNGE (only UIDs in
 * ranges): the writer expunges the messages that have \Deleted at the
 * moment it applies this operation, atomically with every other commit
 * (in the transaction's order: earlier operations of the same
 * transaction count).  A message whose \Deleted another session
 * cleared in a commit applied before it stays; one that got \Deleted
 * after the caller last looked goes too.  The UIDs actually expunged
 * are the result's expunged set; nothing expunged is no error.  Any
 * thread owning txn, any context.  Returns 0; MIX_EINVAL (bad range, or
 * ranges NULL with count > 0); MIX_ELIMIT (the transaction's size
 * limit); -ENOMEM.  On error the transaction is unchanged. */
MIX_API int mix_txn_expunge_deleted(struct mix_txn *txn,
				    const struct mix_uid_range *ranges,
				    size_t count);

/* Set the extension record data of message uid.  Returns 0, MIX_EINVAL
 * (uid 0, unknown extension, wrong size), MIX_ELIMIT (the transaction's
 * size limit), -ENOMEM. Owner thread, any context (building a transaction never waits).  On
 * error the operation is not added; the transaction can still be
 * committed or aborted. */
MIX_API int mix_txn_ext_set(struct mix_txn *txn, uint32_t uid,
			    uint32_t ext_id, const void *data, size_t size);

/* Write size bytes at offset of the extension's header data.  Returns 0,
 * MIX_EINVAL (unknown extension, outside its header data), MIX_ELIMIT
 * (the transaction's size limit), -ENOMEM. Owner thread, any context (building a transaction never waits).  On
 * error the operation is not added; the transaction can still be
 * committed or aborted. */
MIX_API int mix_txn_ext_hdr_set(struct mix_txn *txn, uint32_t ext_id,
				uint32_t offset, const void *data, size_t size);

/* Header fields a transaction may set. */
enum mix_hdr_field {
	MIX_HDR_UID_VALIDITY,      /* any non-zero value */
	MIX_HDR_NEXT_UID,          /* only raises it */
	MIX_HDR_FIRST_RECENT_UID,  /* only raises it */
};

/* Set a header field.  Returns 0, MIX_EINVAL (unknown field, or
 * UIDVALIDITY 0), -ENOMEM. Owner thread, any context (building a transaction never waits).  On
 * error the operation is not added; the transaction can still be
 * committed or aborted. */
MIX_API int mix_txn_hdr_set(struct mix_txn *txn, enum mix_hdr_field field,
			    uint32_t value);

/* IMAP4rev1 \Recent: claim, atomically in the writer, the messages
 * that arrived since the last claim, UIDs [first_recent_uid, next_uid)
 * of the header at the moment the writer applies this operation (after
 * the transaction's earlier operations, its appends included).  The
 * claim raises first_recent_uid to next_uid, so exactly one claimer
 * gets each UID: the result's recent_first..recent_last (0, 0 if none).
 * A claim that gets UIDs is logged like MIX_HDR_FIRST_RECENT_UID and
 * raises HIGHESTMODSEQ as that does (docs/condstore.md).  Owner
 * thread, any context (building a transaction never waits).  Returns 0
 * or -ENOMEM (the operation is not added). */
MIX_API int mix_txn_claim_recent(struct mix_txn *txn);

/* Ask the writer to report what this transaction changed: the result's
 * changed set (UIDs whose visible flags or keywords changed, for
 * untagged FETCH (FLAGS MODSEQ) after STORE, and to know which STORE
 * .SILENT may skip) and expunged set.  Without it the writer collects
 * neither (costs nothing).  The sets belong to the result: free them
 * with mix_commit_result_free().  Owner thread, any context; cannot
 * fail. */
MIX_API void mix_txn_want_changed(struct mix_txn *txn);

/* Commit: hand the transaction to the writer and wait until it is
 * published (and with MIX_DURABILITY_SYNC, durable).  Frees the
 * transaction and sets *txn to NULL whatever the result.  result_r may be
 * NULL; it is written only on success (then free it with
 * mix_commit_result_free; the caller owns its sets).  Returns 0;
 * MIX_EINVAL (bad durability, or an operation the writer refused: an
 * extension registered meanwhile with other sizes); MIX_EDEADLK (inside
 * a read-side section; nothing was committed); MIX_ELIMIT (UIDs
 * exhausted, more than MIX_MAX_KEYWORDS names, a log offset or record
 * size past the format's limits; this transaction alone fails, nothing
 * of it was committed); -ENOSPC or -EDQUOT (the log ran out of space
 * before any of the batch could be seen; nothing was committed, the
 * index goes on and later commits succeed once there is space);
 * MIX_EPANIC (the log could not be written or synced: the transaction
 * may or may not survive a crash; the index refuses writes until
 * reopened); -ENOMEM; -errno (the first failed write or sync of a
 * poisoned index returns its errno, later commits MIX_EPANIC).  The
 * owner thread of txn, not inside a read-side section, not from a
 * callback (a commit callback runs on the thread that applies commits:
 * waiting there waits for itself). */
MIX_API int mix_txn_commit(struct mix_txn **txn, enum mix_durability durability,
			   struct mix_commit_result *result_r);

/* Called once when an asynchronous commit is done, on the thread that
 * applied it (the writer thread, or a committing thread holding the
 * writer role).  ret and result as for mix_txn_commit().  It must be
 * short and must not commit or close an index. */
typedef void mix_commit_fn(void *ctx, int ret,
			   const struct mix_commit_result *result);

/* Commit without waiting: cb is called when the commit is done.  Sets
 * *txn to NULL and frees the transaction whatever the result.  Returns 0
 * (cb will be called exactly once, with the codes of mix_txn_commit) or
 * an error, and then cb is never called and nothing was committed:
 * MIX_EINVAL (cb NULL or bad durability), MIX_EDEADLK (inside a
 * read-side section), MIX_EPANIC (the index is poisoned).  The owner
 * thread of txn, not inside a read-side section, not from a callback:
 * it may wait while the writer's queue is full. */
MIX_API int mix_txn_commit_async(struct mix_txn **txn,
				 enum mix_durability durability,
				 mix_commit_fn *cb, void *ctx);

/* Drop the transaction, nothing of it committed.  Sets *txn to NULL
 * (NULL is fine).  Owner thread, any context; cannot fail. */
MIX_API void mix_txn_abort(struct mix_txn **txn);

/* ---- reading --------------------------------------------------------- */

struct mix_snap;

/* Start / end a read-side section.  Never blocks (but for a thread's
 * first call, which registers the thread: while another thread forks,
 * it waits for that fork, which waits for the sections open at that
 * moment); nests; each lock needs its unlock on the same thread.  Any thread (registers it with mix's RCU
 * domain on first use), not from a signal handler; cannot fail. */
MIX_API void mix_read_lock(void);
MIX_API void mix_read_unlock(void);

/* Returns the newest snapshot of index (never NULL for an open index).
 * Any thread, inside mix_read_lock(); the snapshot belongs to mix and
 * is valid until the matching mix_read_unlock(), on that thread. */
MIX_API const struct mix_snap *mix_index_snap(struct mix_index *index);

/* Snapshot header values: each returns the value.  Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread);
 * cannot fail. */
MIX_API uint32_t mix_snap_messages_count(const struct mix_snap *snap);
MIX_API uint32_t mix_snap_next_uid(const struct mix_snap *snap);
MIX_API uint32_t mix_snap_uid_validity(const struct mix_snap *snap);
MIX_API uint64_t mix_snap_highest_modseq(const struct mix_snap *snap);

/* Header counters of snap, copied into *counts_r.  Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread);
 * cannot fail. */
struct mix_snap_counts {
	uint32_t seen;                 /* messages with \Seen */
	uint32_t deleted;              /* messages with \Deleted */
	uint32_t first_recent_uid;
	uint32_t first_unseen_uid_lowwater;
	uint32_t first_deleted_uid_lowwater;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[4];
};
MIX_API void mix_snap_counts(const struct mix_snap *snap,
			     struct mix_snap_counts *counts_r);

/* One message as a lookup returns it.  Pointers are into the snapshot and
 * valid as long as the snapshot is.  Fixed layout: it never grows (every
 * lookup fills it); data added later gets accessor functions taking the
 * record, as mix_record_ext() does (docs/api.md "ABI"). */
struct mix_record {
	uint32_t uid;
	uint32_t seq;           /* 1-based sequence number in the snapshot */
	uint8_t flags;          /* enum mix_flag */
	uint64_t modseq;
	const uint8_t *keywords;     /* bitmap: bit i = keyword i */
	uint32_t keywords_bits;      /* bits in the bitmap */
	const void *raw;             /* the record; for mix_record_ext() */
};

/* Find uid.  Returns 1 and fills *rec_r when present; 0 when absent (then
 * rec_r->seq is the sequence the UID would have, i.e. the count of
 * messages with smaller UIDs, + 1).  rec_r may be NULL.  Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread);
 * the record points into snap. */
MIX_API int mix_snap_lookup_uid(const struct mix_snap *snap, uint32_t uid,
				struct mix_record *rec_r);

/* Sequence (1..messages_count) to record.  Returns 1 (*rec_r filled,
 * pointing into snap), or 0 if out of range (*rec_r untouched).
 * Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread). */
MIX_API int mix_snap_lookup_seq(const struct mix_snap *snap, uint32_t seq,
				struct mix_record *rec_r);

/* The sequence range of the messages with UIDs in [first_uid, last_uid].
 * Returns 1 and sets *seq1_r..*seq2_r, or 0 when no message is in it.
 * Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread). */
MIX_API int mix_snap_uid_range_to_seq(const struct mix_snap *snap,
				      uint32_t first_uid, uint32_t last_uid,
				      uint32_t *seq1_r, uint32_t *seq2_r);

/* Returns the extension data of a record (rec from a lookup on snap),
 * or NULL for an unknown extension or one without record data; *size_r
 * (may be NULL) gets its size.  The data is snap's (valid as long as
 * snap).  Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread). */
MIX_API const void *mix_record_ext(const struct mix_snap *snap,
				   const struct mix_record *rec,
				   uint32_t ext_id, size_t *size_r);

/* Returns the header data of an extension, or NULL (unknown, or the
 * keywords extension); *size_r (may be NULL) gets its size.  The data is
 * snap's.  Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread). */
MIX_API const void *mix_snap_ext_hdr(const struct mix_snap *snap,
				     uint32_t ext_id, size_t *size_r);

/* The id of an extension by name; returns 1 and sets *ext_id_r, or 0.
 * Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread). */
MIX_API int mix_snap_ext_lookup(const struct mix_snap *snap, const char *name,
				uint32_t *ext_id_r);

/* Keywords known to the index: their count, and the name of number idx
 * (NULL if idx is out of range; the string is snap's, valid as long as
 * snap).  Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread); cannot fail. */
MIX_API uint32_t mix_snap_keyword_count(const struct mix_snap *snap);
MIX_API const char *mix_snap_keyword_name(const struct mix_snap *snap,
					  uint32_t idx);
/* Returns 1 and the keyword's index, or 0 if the index has no such one.
 * Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread). */
MIX_API int mix_snap_keyword_lookup(const struct mix_snap *snap,
				    const char *name, uint32_t *idx_r);

/* Returns 1 if record has keyword idx (an index from snap's keyword
 * list), else 0.  Section (of the snapshot rec came from). */
static inline int mix_record_has_keyword(const struct mix_record *rec,
					 uint32_t idx)
{
	return idx < rec->keywords_bits &&
	       (rec->keywords[idx / 8] >> (idx % 8)) & 1;
}

/* Iteration in sequence order from seq 'from' (1-based). */
struct mix_iter {
	const struct mix_snap *snap;
	uint32_t chunk;
	uint32_t pos;
	uint32_t seq;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[2];
};

/* Position it at sequence from (1 = first message).  The iterator is
 * the caller's plain struct, usable as long as snap.  Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread);
 * cannot fail. */
MIX_API void mix_iter_init(struct mix_iter *it, const struct mix_snap *snap,
			   uint32_t from);

/* Next record; returns 1 and fills *rec_r (pointing into the snapshot),
 * or 0 at the end.  In the iterator's snapshot's context (Section). */
MIX_API int mix_iter_next(struct mix_iter *it, struct mix_record *rec_r);

/* ---- views (docs/api.md "Views") ------------------------------------ */

struct mix_view;

/* Open a view of index: it pins the newest snapshot (one reference taken
 * inside a read-side section), so sequence numbers stay stable across an
 * IMAP command.  A view holds no read-side section between calls; any
 * thread may use it (one at a time: its owner thread).  Returns 0
 * (*view_r set; the caller owns the view until mix_view_close, which
 * must come before mix_index_close) or -ENOMEM (*view_r NULL).  Any
 * thread, any context (it never waits). */
MIX_API int mix_view_open(struct mix_index *index, struct mix_view **view_r);

/* Drop the view and what it holds (held expunges included); its
 * snapshots are freed once nothing else holds them, possibly at once:
 * nothing obtained through the view (mix_view_snap, records, names,
 * extension data) may be used after, whatever read-side section is
 * open.  Sets *view to NULL (NULL is fine).  Owner thread, any context
 * (it never waits); cannot fail. */
MIX_API void mix_view_close(struct mix_view **view);

/* Returns the view's snapshot (never NULL): mix's, valid until the view
 * moves (sync/refresh returning 1) or closes.  All mix_snap_* functions
 * work on it without mix_read_lock.  While the view holds expunges its
 * sequence numbers are not the session's (see mix_view_lookup_seq).
 * Owner thread; cannot fail. */
MIX_API const struct mix_snap *mix_view_snap(struct mix_view *view);

/* Move the view to the newest snapshot without a report, dropping held
 * expunges.  Returns 1 if it moved (or dropped held expunges), 0 if it
 * was already the newest (a pointer load and a compare).  Owner thread,
 * any context (it never waits); cannot fail. */
MIX_API int mix_view_refresh(struct mix_view *view);

/* What changed between a view's old and new snapshot, as IMAP sends it. */
struct mix_view_changes {
	/* EXPUNGE responses: sequence numbers in the order to send them
	 * (descending, so each is valid when sent) */
	uint32_t *expunged_seqs;
	uint32_t expunged_count;
	/* the same messages by UID (sorted ranges; VANISHED for QRESYNC) */
	struct mix_uid_range *expunged_uids;
	uint32_t expunged_uid_ranges;
	/* messages in both snapshots whose flags, keywords, extension data
	 * or modseq changed (FETCH FLAGS / MODSEQ), ascending, each once */
	uint32_t *changed_uids;
	uint32_t changed_count;
	/* new messages (EXISTS grows by new_count): their UIDs ascending */
	uint32_t *new_uids;
	uint32_t new_count;
	uint32_t old_messages_count, new_messages_count;
	uint64_t old_highest_modseq, new_highest_modseq;
	/* 1 if the expunge history did not reach back and the report was
	 * computed by comparing the two snapshots (cost O(messages)) */
	int full_compare;
	/* messages the view holds as expunged after this sync (0 unless
	 * MIX_VIEW_SYNC_HOLD_EXPUNGES; counted in new_messages_count) */
	uint32_t held_count;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[6];
};

/* Move the view to the newest snapshot and report what changed.  The
 * cost follows the number of changes (CHANGEDSINCE chunk skipping and the
 * expunge history), not the mailbox size.  Returns 1 (moved; *changes_r
 * filled, free it with mix_view_changes_free), 0 (nothing new; *changes_r
 * zeroed) or -ENOMEM (the view did not move; nothing to free).  The
 * report is the caller's, independent of any snapshot.  Owner thread,
 * not inside a read-side section. */
MIX_API int mix_view_sync(struct mix_view *view,
			  struct mix_view_changes *changes_r);

enum mix_view_sync_flag {
	/* Hold expunges (IMAP forbids EXPUNGE during FETCH, STORE and
	 * SEARCH, RFC 9051 §7.5.1): report new and changed messages, but
	 * keep the messages expunged since in the view, with their last
	 * state and their sequence numbers, until a sync without this flag
	 * reports them.  Until then the view keeps a copy of each held
	 * message's record (memory per held message, not per mailbox):
	 * release at NOOP, IDLE, CHECK and EXPUNGE as IMAP wants anyway.
	 * See docs/api.md "Held expunges". */
	MIX_VIEW_SYNC_HOLD_EXPUNGES = 0x01,
};

/* mix_view_sync with flags (enum mix_view_sync_flag).  With
 * MIX_VIEW_SYNC_HOLD_EXPUNGES the report has no expunges: its
 * new_messages_count counts the held messages too (no sequence number
 * moves; the new messages come at the end), held_count says how many
 * are held, and new_highest_modseq stays below the modseq of the first
 * held expunge (RFC 7162 errata 1810).  Without it, the held messages
 * are reported with the expunges since the last sync, numbered as the
 * session knows them (descending), and the view holds none after; it
 * then returns 1 with them even when the index has nothing new.
 * Returns 1 (moved or released; *changes_r filled, free it with
 * mix_view_changes_free), 0 (nothing new and nothing to release;
 * *changes_r zeroed), MIX_EINVAL (unknown flag; nothing done) or
 * -ENOMEM (the view did not move and still holds what it held).
 * Owner thread; not inside a read-side section. */
MIX_API int mix_view_sync_flags(struct mix_view *view, unsigned flags,
				struct mix_view_changes *changes_r);

/* Free a report's arrays and zero it; harmless on a zeroed report.
 * Any thread; cannot fail. */
MIX_API void mix_view_changes_free(struct mix_view_changes *changes);

/* The view's messages as the session knows them: the view's snapshot
 * plus the messages it holds as expunged, merged in UID order.  Without
 * held expunges these are the snapshot's own answers.  Owner thread, no
 * read-side section needed; cannot fail.  The records point into
 * memory the view keeps (its snapshot, or for a held message a copy of
 * its last record), valid until the view moves or closes; *snap_r (when
 * snap_r is not NULL) gets the snapshot to read the record with: pass
 * it to mix_record_ext() and mix_snap_keyword_name(). */
#define MIX_VIEW_EXPUNGED 2
/* Sequence (1..mix_view_messages_count) to record.  Returns 1 (a
 * message of the snapshot), MIX_VIEW_EXPUNGED (a held expunged message:
 * its last state), or 0 (out of range; *rec_r undefined).  Owner
 * thread. */
MIX_API int mix_view_lookup_seq(struct mix_view *view, uint32_t seq,
				struct mix_record *rec_r,
				const struct mix_snap **snap_r);
/* UID to record.  Returns 1, MIX_VIEW_EXPUNGED (held), or 0 (absent;
 * then rec_r->seq is the sequence the UID would have and *snap_r is
 * NULL).  rec_r may be NULL.  Owner thread. */
MIX_API int mix_view_lookup_uid(struct mix_view *view, uint32_t uid,
				struct mix_record *rec_r,
				const struct mix_snap **snap_r);
/* The view's sequence range of the messages (held ones included) with
 * UIDs in [first_uid, last_uid]: returns 1 and sets *seq1_r..*seq2_r, or
 * 0 if none.  Owner thread. */
MIX_API int mix_view_uid_range_to_seq(struct mix_view *view,
				      uint32_t first_uid, uint32_t last_uid,
				      uint32_t *seq1_r, uint32_t *seq2_r);
/* Returns 1 if the view holds uid as expunged, else 0.  Owner thread. */
MIX_API int mix_view_is_expunged(struct mix_view *view, uint32_t uid);
/* Returns EXISTS as the session knows it: the snapshot's messages plus
 * the held ones.  Owner thread. */
MIX_API uint32_t mix_view_messages_count(struct mix_view *view);
/* Returns the messages held as expunged (0 unless a holding sync held
 * some).  Owner thread. */
MIX_API uint32_t mix_view_held_count(struct mix_view *view);
/* Returns the HIGHESTMODSEQ to announce: the snapshot's, or while
 * expunges are held the highest modseq below the first held expunge's,
 * whichever is lower (RFC 7162 errata 1810).  Owner thread. */
MIX_API uint64_t mix_view_highest_modseq(struct mix_view *view);

/* ---- watchers ---------------------------------------------------------- */

struct mix_watch;

/* A watcher: an eventfd that becomes readable after the index publishes
 * a new snapshot (IMAP IDLE; add it to epoll).  It starts armed.
 * Returns 0 (*watch_r set; the caller owns it until mix_watch_close,
 * which must come before mix_index_close), -ENOMEM or -errno (from
 * eventfd: -EMFILE, -ENFILE); on error *watch_r is NULL.  Any thread,
 * any context. */
MIX_API int mix_watch_open(struct mix_index *index, struct mix_watch **watch_r);

/* Returns the watcher's eventfd: non-blocking, close-on-exec, owned by
 * the watcher (do not close or read it; mix_watch_rearm drains it),
 * valid until mix_watch_close.  Any thread; cannot fail. */
MIX_API int mix_watch_fd(struct mix_watch *watch);

/* Consume the notification and arm the watcher again.  Call it before
 * syncing the view, so a publish after the sync wakes the fd again.
 * Owner thread, any context; cannot fail. */
MIX_API void mix_watch_rearm(struct mix_watch *watch);

/* Remove the watcher from its index, close its eventfd and free it; sets
 * *watch to NULL (NULL is fine).  Take the fd out of your epoll set
 * first: the fd number may be reused at once.  Any thread (one at a
 * time with the owner), any context, not from a callback; cannot
 * fail. */
MIX_API void mix_watch_close(struct mix_watch **watch);

/* ---- other processes ---------------------------------------------------- */

/* A MIX_OPEN_READONLY index reads what the owning process (or a later
 * one) has committed since: the log tail, following rotation, or a new
 * mix.index when the logs moved on.  Never shows a torn or half-written
 * transaction.  Returns 1 if a new snapshot was published, 0 if nothing
 * was new, MIX_EINVAL for a writable index, MIX_EDEADLK inside a read-side
 * section, MIX_ECORRUPT (the files are damaged; the index keeps its last
 * snapshot), MIX_ENOTFOUND (the index's directory was removed: the
 * mailbox was deleted; the index keeps its last snapshot), -errno.  A
 * directory renamed while open is followed.  Any thread, not inside a read-side section, not
 * from a callback; concurrent calls are serialized. */
MIX_API int mix_index_refresh(struct mix_index *index);

/* Fork (docs/api.md "Fork").  fork() may be called from any thread while
 * mix's threads (writers, the reclaim thread, readers) run, but not
 * inside a read-side section: fork waits for a grace period in progress,
 * which waits for every open section.  posix_spawn and vfork + exec need
 * nothing.  In the child:
 * - Nothing inherited from the parent may be used: not its engine,
 *   indexes, transactions, views, watchers, snapshots or records, not
 *   even to close or free them.  The writer and reclaim threads they
 *   need do not exist in the child, and a parent thread may have held
 *   their locks at the fork.  The child never frees them (they are its
 *   copy of the parent's memory, gone at exit or exec); the frees the
 *   parent had deferred are dropped in the child, never run.
 * - Their file descriptors (all close-on-exec) stay open until the child
 *   exits or execs.  The write lock of an index the parent has open for
 *   writing is an open-file-description lock that the child's copy of
 *   the descriptor keeps: until then, a writable open of that index, in
 *   the child or in any process after the parent closed it, fails with
 *   MIX_ELOCKED.
 * - The child may create an engine of its own, and with it open indexes
 *   MIX_OPEN_READONLY, read them, mix_index_refresh and close them (an
 *   index the parent has open for writing included), open for writing
 *   indexes nobody else has open, and free the engine; its threads are
 *   registered and its reclaim thread started as in any process.
 *   tests/test-fork.c does this in children forked among busy
 *   committers, readers and the reclaim thread. */

/* ---- CONDSTORE / QRESYNC (RFC 7162; docs/condstore.md) ------------- */

/* What raises a modseq (docs/condstore.md has the table).  Only an
 * effective change counts (a no-op raises nothing); an effective change
 * gives the transaction's modseq to:
 * - the message and HIGHESTMODSEQ: append (the new message), expunge
 *   (the expunge history keeps it), a visible flag (\Answered ..
 *   \Recent) set or cleared, keywords added, removed or replaced,
 *   record data of an extension;
 * - HIGHESTMODSEQ only: a new keyword name, header data of an
 *   extension, the header fields uid_validity, next_uid and
 *   first_recent_uid (also through mix_txn_claim_recent), registering
 *   a new extension;
 * - nothing (logged, but no modseq moves, live and on replay): DIRTY
 *   (MIX_FLAG_DIRTY) set or cleared, record or header data of an
 *   extension registered with MIX_EXT_FLAG_NO_MODSEQ, the engine's UID
 *   reservations.  A transaction of only these reports no_changes 0 and
 *   the unchanged HIGHESTMODSEQ as its modseq. */

/* What a CHANGEDSINCE iteration also requires of a message (SEARCH
 * MODSEQ): every flag in flags_set, none in flags_unset, every keyword
 * index in keywords[].  Zero-initialize for "no condition". */
struct mix_filter {
	uint8_t flags_set;
	uint8_t flags_unset;
	const uint32_t *keywords;
	uint32_t keyword_count;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[2];
};

struct mix_changed_iter {
	const struct mix_snap *snap;
	uint64_t since;
	uint32_t chunk;
	uint32_t pos;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[2];
};

/* The lost point of snap, or 0: a modseq below it may be one a client
 * saw from a change a power cut then took back (a transaction committed
 * with MIX_DURABILITY_NONE; docs/condstore.md "What a power cut takes
 * back").  It is set by the writable open after such a crash (when the
 * open's mix_open_info.uids_skipped is non-zero) to the first modseq of
 * that session, and never lowered.  mix_changed_iter_init,
 * mix_snap_expunged_since and mix_snap_qresync answer a since below it
 * as from 0 (every message changed, no precise expunge history), so a
 * client that synchronized before the crash is resynchronized in full,
 * once.  Section (inside the read-side section that got snap, on that
 * thread, or on a view's snapshot by the view's owner thread); cannot
 * fail. */
MIX_API uint64_t mix_snap_lost_modseq(const struct mix_snap *snap);

/* Iterate, in UID order, the messages of snap whose modseq is above
 * since (FETCH CHANGEDSINCE, SEARCH MODSEQ); a since below the lost
 * point (mix_snap_lost_modseq) counts as 0.  Chunks whose highest
 * modseq is not above since are skipped without being read, so the cost
 * follows the number of changed chunks, not the mailbox size.  The
 * iterator is the caller's plain struct, usable as long as snap.
 * Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread); cannot fail. */
MIX_API void mix_changed_iter_init(struct mix_changed_iter *it,
				   const struct mix_snap *snap,
				   uint64_t since);
/* Next such message that also matches filter (may be NULL); returns 1
 * and fills *rec_r (pointing into the snapshot), or 0 at the end.  In
 * the iterator's snapshot's context (Section). */
MIX_API int mix_changed_iter_next(struct mix_changed_iter *it,
				  const struct mix_filter *filter,
				  struct mix_record *rec_r);

/* The UIDs expunged by transactions with modseq above since.  Returns 1
 * and a malloc'd sorted, merged range list (free() it; NULL when empty)
 * when the expunge history reaches back to since; 0 when it does not, or
 * since is below the lost point (mix_snap_lost_modseq) —
 * then *oldest_r (may be NULL) is the oldest modseq it can answer for;
 * -ENOMEM (*ranges_r NULL).  Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread). */
MIX_API int mix_snap_expunged_since(const struct mix_snap *snap,
				    uint64_t since,
				    struct mix_uid_range **ranges_r,
				    uint32_t *count_r, uint64_t *oldest_r);

/* SELECT/EXAMINE (QRESYNC (uidvalidity modseq [known-uids
 * [seq-match-data]])), RFC 7162 §3.2.5.  Zero-initialize it (= { 0 })
 * and set the fields: fields added later mean "not given" when 0. */
struct mix_qresync_params {
	uint32_t uid_validity;
	uint64_t modseq;
	/* optional: the UIDs the client knows (NULL = all) */
	const struct mix_uid_range *known_uids;
	uint32_t known_uids_count;
	/* optional sequence match data: seqs[i] is the sequence number the
	 * client has for uids[i], ascending */
	const uint32_t *match_seqs;
	const uint32_t *match_uids;
	uint32_t match_count;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[4];
};

struct mix_qresync_result {
	/* the client's UIDVALIDITY differs: nothing else is filled */
	int uid_validity_mismatch;
	/* 1: vanished lists exactly the UIDs expunged since modseq (within
	 * known-uids); 0: the history did not reach back (or modseq is
	 * below the lost point, mix_snap_lost_modseq), vanished is the
	 * RFC's fallback (known UIDs, above the last matching sequence match
	 * pair, that no longer exist) */
	int precise;
	struct mix_uid_range *vanished;   /* VANISHED (EARLIER) */
	uint32_t vanished_count;
	struct mix_uid_range *changed;    /* FETCH these: modseq > modseq
					   * (every one below the lost point) */
	uint32_t changed_count;
	/* room for fields added later (docs/api.md "ABI"): never
	 * read or write it */
	uint64_t reserved[4];
};

/* Compute what SELECT (QRESYNC ...) must send.  Section (inside the read-side section that got snap, on that thread,
 * or on a view's snapshot by the view's owner thread)
 * (typically on a view's snapshot).  Returns 0 (*result_r filled; the
 * caller owns its arrays, independent of snap: free them with
 * mix_qresync_result_free), MIX_EINVAL (a bad known-UID range, match
 * data without arrays; nothing to free) or -ENOMEM (nothing to free). */
MIX_API int mix_snap_qresync(const struct mix_snap *snap,
			     const struct mix_qresync_params *params,
			     struct mix_qresync_result *result_r);

/* Free a QRESYNC result's arrays and zero it; harmless on a zeroed
 * result.  Any thread; cannot fail. */
MIX_API void mix_qresync_result_free(struct mix_qresync_result *result);

#ifdef __cplusplus
}
#endif

/* the rest of the public API */
#include "mix/version.h"
#include "mix/virtual.h"
#include "mix/mailbox-name.h"
#include "mix/list.h"

#endif
