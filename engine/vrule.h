/*
 * Virtual mailbox rules: IMAP SEARCH syntax (RFC 3501 §6.4.4, MODSEQ of
 * RFC 7162, YOUNGER/OLDER of RFC 5032) parsed into a tree, and evaluated
 * against one backend message (docs/virtual.md "Rule syntax").
 *
 * A rule is immutable once parsed; any thread may evaluate it at the same
 * time.  Parsing never asserts on input: bad input gives MIX_EINVAL and a
 * message (mix_last_error) naming the byte position.
 */
#ifndef MIX_VRULE_H
#define MIX_VRULE_H

#include <stddef.h>
#include <stdint.h>

#include "mix/mix.h"

#define MIX_VRULE_MAX_LEN      4096u  /* bytes of rule text */
#define MIX_VRULE_MAX_DEPTH    64u    /* nesting of NOT / OR / () */
#define MIX_VRULE_MAX_KEYWORDS 64u    /* distinct keywords in a rule */

enum mix_vrule_op {
	MIX_VRULE_ALL,
	MIX_VRULE_FLAG,      /* u.flag set (enum mix_flag bit) */
	MIX_VRULE_KEYWORD,   /* keyword slot u.slot set */
	MIX_VRULE_MODSEQ,    /* modseq >= u.n */
	MIX_VRULE_UID,       /* uid in u.set */
	MIX_VRULE_SINCE,     /* received >= u.n (a day start, UTC) */
	MIX_VRULE_BEFORE,    /* received < u.n */
	MIX_VRULE_ON,        /* u.n <= received < u.n + 86400 */
	MIX_VRULE_YOUNGER,   /* received >= now - u.n */
	MIX_VRULE_OLDER,     /* received <= now - u.n */
	MIX_VRULE_NOT,       /* !a */
	MIX_VRULE_AND,       /* a && b */
	MIX_VRULE_OR,        /* a || b */
};

struct mix_vrule_range {
	uint32_t first, last;    /* inclusive; '*' is UINT32_MAX */
};

struct mix_vrule_node {
	enum mix_vrule_op op;
	uint32_t a, b;           /* child node indexes (NOT: a; AND/OR) */
	union {
		uint8_t flag;
		uint32_t slot;
		uint64_t n;
		struct { uint32_t first, count; } set; /* into ranges[] */
	} u;
};

struct mix_vrule {
	struct mix_vrule_node *nodes;
	uint32_t node_count;
	uint32_t root;
	struct mix_vrule_range *ranges;
	uint32_t range_count;
	/* keyword slots: names as written (first spelling), compared with
	 * the backend's keywords ignoring ASCII case */
	char **keywords;
	uint32_t keyword_count;
	/* 1 if YOUNGER/OLDER appear: the result depends on the clock */
	int time_relative;
};

/* One backend message as a rule sees it. */
struct mix_vrule_msg {
	uint32_t uid;
	uint8_t flags;
	uint64_t modseq;
	uint64_t received;       /* seconds since the epoch; 0 if unknown */
	uint64_t kw_mask;        /* bit s: the message has keyword slot s */
};

/* Parse text.  Returns 0 and a rule (free with mix_vrule_free), or
 * MIX_EINVAL with a message naming the byte position (0-based) of the bad
 * input, also stored in *errpos_r (may be NULL), or -ENOMEM. */
int mix_vrule_parse(const char *text, struct mix_vrule **rule_r,
		    size_t *errpos_r);
void mix_vrule_free(struct mix_vrule **rule);

/* 1 if msg matches the rule at time now (seconds since the epoch). */
int mix_vrule_eval(const struct mix_vrule *rule,
		   const struct mix_vrule_msg *msg, uint64_t now);

/* ASCII case-insensitive equality (IMAP keywords). */
int mix_vrule_kw_equal(const char *a, const char *b);

/* Day start (seconds since the epoch, UTC) of an IMAP date d-Mon-yyyy;
 * returns 0 and *t_r, or -1 if s[0..len) is not a valid date. */
int mix_vrule_parse_date(const char *s, size_t len, uint64_t *t_r);

#endif
