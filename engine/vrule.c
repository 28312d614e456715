/*
 * Virtual mailbox rules: an IMAP SEARCH program (docs/virtual.md "Rule
 * syntax") parsed into a node array, and its evaluation on one message.
 *
 * Grammar (keys are case-insensitive; juxtaposition is AND):
 *   rule  = keys END
 *   keys  = key *(SP key)
 *   key   = ALL | SEEN | UNSEEN | FLAGGED | UNFLAGGED | DELETED |
 *           UNDELETED | ANSWERED | UNANSWERED | DRAFT | UNDRAFT |
 *           KEYWORD atom | UNKEYWORD atom | NOT key | OR key key |
 *           "(" keys ")" | MODSEQ [entry-name entry-type] number |
 *           UID set | SINCE date | BEFORE date | ON date |
 *           YOUNGER number | OLDER number
 *
 * Who: the parse runs on the caller's thread; the result is immutable and
 * shared by any number of evaluating threads.  Invariants: every child
 * index is below its parent's (children are built first), AND chains lean
 * right so that evaluation iterates them instead of recursing, and the
 * nesting of NOT/OR/() is at most MIX_VRULE_MAX_DEPTH, which bounds the
 * recursion of both parse and evaluation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "vrule.h"

struct parser {
	const char *s;
	size_t len, pos;
	struct mix_vrule *r;
	uint32_t node_cap, range_cap;
	size_t errpos;
};

struct token {
	size_t pos, len;        /* of the token's text (quoted: inside) */
	int kind;               /* 0 end, '(' , ')', 'a' atom, 'q' quoted */
};

static int perr(struct parser *p, size_t pos, const char *what)
{
	p->errpos = pos;
	return mix_err(MIX_EINVAL, "rule: position %zu: %s", pos, what);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The next token, without consuming it. */
static int peek(struct parser *p, struct token *t)
{
	size_t i = p->pos;

	while (i < p->len && is_space(p->s[i]))
		i++;
	t->pos = i;
	t->len = 0;
	if (i == p->len) {
		t->kind = 0;
		return 0;
	}
	if (p->s[i] == '(' || p->s[i] == ')') {
		t->kind = p->s[i];
		t->len = 1;
		return 0;
	}
	if (p->s[i] == '"') {
		size_t j = i + 1;
		while (j < p->len && p->s[j] != '"') {
			if (p->s[j] == '\\')
				j++;
			j++;
		}
		if (j >= p->len)
			return perr(p, i, "unterminated quoted string");
		t->kind = 'q';
		t->pos = i + 1;
		t->len = j - i - 1;
		return 0;
	}
	while (i < p->len && !is_space(p->s[i]) && p->s[i] != '(' &&
	       p->s[i] != ')' && p->s[i] != '"')
		i++;
	t->kind = 'a';
	t->len = i - t->pos;
	return 0;
}

static void consume(struct parser *p, const struct token *t)
{
	p->pos = t->pos + t->len + (t->kind == 'q' ? 1 : 0);
}

static int next(struct parser *p, struct token *t)
{
	int ret = peek(p, t);
	if (ret == 0)
		consume(p, t);
	return ret;
}

static int tok_is(const struct parser *p, const struct token *t,
		  const char *word)
{
	size_t n = strlen(word), i;

	if (t->kind != 'a' || t->len != n)
		return 0;
	for (i = 0; i < n; i++) {
		char c = p->s[t->pos + i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != word[i])
			return 0;
	}
	return 1;
}

static int add_node(struct parser *p, enum mix_vrule_op op, uint32_t *idx_r)
{
	struct mix_vrule *r = p->r;

	if (r->node_count == p->node_cap) {
		uint32_t cap = p->node_cap ? p->node_cap * 2 : 16;
		void *n = realloc(r->nodes, cap * sizeof(*r->nodes));
		if (n == NULL)
			return MIX_ENOMEM();
		r->nodes = n;
		p->node_cap = cap;
	}
	memset(&r->nodes[r->node_count], 0, sizeof(r->nodes[0]));
	r->nodes[r->node_count].op = op;
	*idx_r = r->node_count++;
	return 0;
}

/* An unsigned decimal number in s[pos..pos+len) not above max. */
static int parse_num(const char *s, size_t len, uint64_t max, uint64_t *n_r)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (n > (max - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	*n_r = n;
	return 0;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int mix_vrule_parse_date(const char *s, size_t len, uint64_t *t_r)
{
	static const char months[] = "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC";
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30,
					  31, 30, 31 };
	uint64_t day, year;
	size_t dl, i;
	unsigned m;
	char mon[3];

	for (dl = 0; dl < len && s[dl] != '-'; dl++)
		;
	if (dl < 1 || dl > 2 || parse_num(s, dl, 31, &day) < 0 || day == 0)
		return -1;
	if (len != dl + 9 || s[dl + 4] != '-')
		return -1;
	for (i = 0; i < 3; i++) {
		char c = s[dl + 1 + i];
		mon[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
	}
	for (m = 0; m < 12; m++)
		if (memcmp(months + 3 * m, mon, 3) == 0)
			break;
	if (m == 12 || parse_num(s + dl + 5, 4, 9999, &year) < 0 ||
	    year < 1970 || day > mdays[m])
		return -1;
	if (m == 1 && day == 29 &&
	    !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		return -1;
	*t_r = (uint64_t)days_from_civil((int64_t)year, m + 1,
					 (unsigned)day) * 86400u;
	return 0;
}

/* atom-char of RFC 3501 without the atom-specials; '\' starts a system
 * flag, which KEYWORD does not take. */
static int keyword_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 255)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
			return 0;
	}
	return 1;
}

int mix_vrule_kw_equal(const char *a, const char *b)
{
	for (;; a++, b++) {
		char x = *a, y = *b;
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return 0;
		if (x == '\0')
			return 1;
	}
}

static int keyword_slot(struct parser *p, const struct token *t,
			uint32_t *slot_r)
{
	struct mix_vrule *r = p->r;
	char *name;
	void *n;
	uint32_t i;

	if (!keyword_ok(p->s + t->pos, t->len))
		return perr(p, t->pos, "expected a keyword (an IMAP atom, "
			    "1..255 bytes, not a \\system flag)");
	name = strndup(p->s + t->pos, t->len);
	if (name == NULL)
		return MIX_ENOMEM();
	for (i = 0; i < r->keyword_count; i++) {
		if (mix_vrule_kw_equal(r->keywords[i], name)) {
			free(name);
			*slot_r = i;
			return 0;
		}
	}
	if (r->keyword_count == MIX_VRULE_MAX_KEYWORDS) {
		free(name);
		return perr(p, t->pos, "more than 64 distinct keywords");
	}
	n = realloc(r->keywords, (r->keyword_count + 1) * sizeof(char *));
	if (n == NULL) {
		free(name);
		return MIX_ENOMEM();
	}
	r->keywords = n;
	r->keywords[r->keyword_count] = name;
	*slot_r = r->keyword_count++;
	return 0;
}

static int add_range(struct parser *p, uint32_t first, uint32_t last)
{
	struct mix_vrule *r = p->r;

	if (r->range_count == p->range_cap) {
		uint32_t cap = p->range_cap ? p->range_cap * 2 : 8;
		void *n = realloc(r->ranges, cap * sizeof(*r->ranges));
		if (n == NULL)
			return MIX_ENOMEM();
		r->ranges = n;
		p->range_cap = cap;
	}
	r->ranges[r->range_count].first = first < last ? first : last;
	r->ranges[r->range_count].last = first < last ? last : first;
	r->range_count++;
	return 0;
}

/* One set element: a number or '*' (UINT32_MAX). */
static int set_number(struct parser *p, size_t pos, size_t len,
		      uint32_t *n_r)
{
	uint64_t n;

	if (len == 1 && p->s[pos] == '*') {
		*n_r = UINT32_MAX;
		return 0;
	}
	if (parse_num(p->s + pos, len, UINT32_MAX, &n) < 0 || n == 0)
		return perr(p, pos, "expected a UID (1..4294967295) or '*'");
	*n_r = (uint32_t)n;
	return 0;
}

/* sequence-set of RFC 3501: elements separated by ',', each n or n:m. */
static int parse_set(struct parser *p, const struct token *t, uint32_t node)
{
	size_t i = t->pos, end = t->pos + t->len;
	uint32_t first_range = p->r->range_count;
	int ret;

	if (t->kind != 'a')
		return perr(p, t->pos, "expected a UID set such as 1,3:5,7:*");
	while (i < end) {
		size_t e = i, colon = 0;
		uint32_t a, b;
		while (e < end && p->s[e] != ',') {
			if (p->s[e] == ':' && colon == 0)
				colon = e;
			e++;
		}
		if (colon == 0) {
			if ((ret = set_number(p, i, e - i, &a)) < 0)
				return ret;
			b = a;
		} else if ((ret = set_number(p, i, colon - i, &a)) < 0 ||
			   (ret = set_number(p, colon + 1, e - colon - 1,
					     &b)) < 0) {
			return ret;
		}
		if ((ret = add_range(p, a, b)) < 0)
			return ret;
		if (e < end && e + 1 == end)
			return perr(p, e, "a UID set ends with ','");
		i = e + 1;
	}
	p->r->nodes[node].u.set.first = first_range;
	p->r->nodes[node].u.set.count = p->r->range_count - first_range;
	return 0;
}

static const struct {
	const char *word;
	uint8_t flag;
	int negate;
} flag_keys[] = {
	{ "SEEN", MIX_FLAG_SEEN, 0 },         { "UNSEEN", MIX_FLAG_SEEN, 1 },
	{ "FLAGGED", MIX_FLAG_FLAGGED, 0 },   { "UNFLAGGED", MIX_FLAG_FLAGGED, 1 },
	{ "DELETED", MIX_FLAG_DELETED, 0 },   { "UNDELETED", MIX_FLAG_DELETED, 1 },
	{ "ANSWERED", MIX_FLAG_ANSWERED, 0 }, { "UNANSWERED", MIX_FLAG_ANSWERED, 1 },
	{ "DRAFT", MIX_FLAG_DRAFT, 0 },       { "UNDRAFT", MIX_FLAG_DRAFT, 1 },
};

static int parse_key(struct parser *p, unsigned depth, uint32_t *idx_r);
static int parse_keys(struct parser *p, unsigned depth, int in_paren,
		      uint32_t *idx_r);

static int wrap_not(struct parser *p, uint32_t child, uint32_t *idx_r)
{
	int ret = add_node(p, MIX_VRULE_NOT, idx_r);
	if (ret == 0)
		p->r->nodes[*idx_r].a = child;
	return ret;
}

/* The argument of a key: a date, a number or a keyword. */
static int key_arg(struct parser *p, const struct token *key,
		   struct token *arg, const char *what)
{
	int ret = next(p, arg);
	char msg[128];

	if (ret < 0)
		return ret;
	if (arg->kind != 'a' && arg->kind != 'q') {
		snprintf(msg, sizeof(msg), "%.*s needs %s", (int)key->len,
			 p->s + key->pos, what);
		return perr(p, arg->pos, msg);
	}
	return 0;
}

static int key_date(struct parser *p, const struct token *key,
		    enum mix_vrule_op op, uint32_t *idx_r)
{
	struct token arg;
	uint64_t t;
	int ret;

	if ((ret = key_arg(p, key, &arg, "a date such as 1-Feb-2026")) < 0)
		return ret;
	if (mix_vrule_parse_date(p->s + arg.pos, arg.len, &t) < 0)
		return perr(p, arg.pos, "expected a date d-Mon-yyyy "
			    "(such as 1-Feb-2026, year 1970 or later)");
	if ((ret = add_node(p, op, idx_r)) == 0)
		p->r->nodes[*idx_r].u.n = t;
	return ret;
}

static int key_number(struct parser *p, const struct token *key,
		      enum mix_vrule_op op, uint64_t min, uint64_t max,
		      uint32_t *idx_r)
{
	struct token arg;
	uint64_t n;
	int ret;

	if ((ret = key_arg(p, key, &arg, "a number")) < 0)
		return ret;
	if (arg.kind != 'a' || parse_num(p->s + arg.pos, arg.len, max, &n) < 0
	    || n < min)
		return perr(p, arg.pos, op == MIX_VRULE_MODSEQ ?
			    "expected a modseq (0..2^63-1)" :
			    "expected a number of seconds (1..2^63-1)");
	if ((ret = add_node(p, op, idx_r)) == 0)
		p->r->nodes[*idx_r].u.n = n;
	return ret;
}

/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 §3.1.5);
 * mix keeps one modseq per message, so the entry is checked and ignored. */
static int key_modseq(struct parser *p, const struct token *key,
		      uint32_t *idx_r)
{
	struct token t;
	int ret;

	if ((ret = peek(p, &t)) < 0)
		return ret;
	if (t.kind == 'q') {
		consume(p, &t);
		if ((ret = next(p, &t)) < 0)
			return ret;
		if (!tok_is(p, &t, "PRIV") && !tok_is(p, &t, "SHARED") &&
		    !tok_is(p, &t, "ALL"))
			return perr(p, t.pos, "expected an entry type "
				    "(priv, shared or all)");
	}
	return key_number(p, key, MIX_VRULE_MODSEQ, 0, INT64_MAX, idx_r);
}

static int key_or(struct parser *p, unsigned depth, uint32_t *idx_r)
{
	uint32_t a, b;
	int ret;

	if ((ret = parse_key(p, depth + 1, &a)) < 0 ||
	    (ret = parse_key(p, depth + 1, &b)) < 0 ||
	    (ret = add_node(p, MIX_VRULE_OR, idx_r)) < 0)
		return ret;
	p->r->nodes[*idx_r].a = a;
	p->r->nodes[*idx_r].b = b;
	return 0;
}

static int key_keyword(struct parser *p, const struct token *key,
		       int negate, uint32_t *idx_r)
{
	struct token arg;
	uint32_t slot = 0, n;
	int ret;

	if ((ret = key_arg(p, key, &arg, "a keyword")) < 0)
		return ret;
	if (arg.kind != 'a')
		return perr(p, arg.pos, "expected a keyword (an IMAP atom, "
			    "not a quoted string)");
	if ((ret = keyword_slot(p, &arg, &slot)) < 0 ||
	    (ret = add_node(p, MIX_VRULE_KEYWORD, &n)) < 0)
		return ret;
	p->r->nodes[n].u.slot = slot;
	return negate ? wrap_not(p, n, idx_r) : (*idx_r = n, 0);
}

static int key_flag(struct parser *p, const struct token *t, uint32_t *idx_r,
		    int *found_r)
{
	uint32_t i, n;
	int ret;

	*found_r = 0;
	for (i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++) {
		if (!tok_is(p, t, flag_keys[i].word))
			continue;
		*found_r = 1;
		if ((ret = add_node(p, MIX_VRULE_FLAG, &n)) < 0)
			return ret;
		p->r->nodes[n].u.flag = flag_keys[i].flag;
		return flag_keys[i].negate ? wrap_not(p, n, idx_r)
					   : (*idx_r = n, 0);
	}
	return 0;
}

static int key_word(struct parser *p, const struct token *t, unsigned depth,
		    uint32_t *idx_r)
{
	uint32_t child, node;
	int ret, found;

	if ((ret = key_flag(p, t, idx_r, &found)) < 0 || found)
		return ret;
	if (tok_is(p, t, "ALL"))
		return add_node(p, MIX_VRULE_ALL, idx_r);
	if (tok_is(p, t, "KEYWORD") || tok_is(p, t, "UNKEYWORD"))
		return key_keyword(p, t, tok_is(p, t, "UNKEYWORD"), idx_r);
	if (tok_is(p, t, "NOT")) {
		if ((ret = parse_key(p, depth + 1, &child)) < 0)
			return ret;
		return wrap_not(p, child, idx_r);
	}
	if (tok_is(p, t, "OR"))
		return key_or(p, depth, idx_r);
	if (tok_is(p, t, "MODSEQ"))
		return key_modseq(p, t, idx_r);
	if (tok_is(p, t, "SINCE"))
		return key_date(p, t, MIX_VRULE_SINCE, idx_r);
	if (tok_is(p, t, "BEFORE"))
		return key_date(p, t, MIX_VRULE_BEFORE, idx_r);
	if (tok_is(p, t, "ON"))
		return key_date(p, t, MIX_VRULE_ON, idx_r);
	if (tok_is(p, t, "YOUNGER") || tok_is(p, t, "OLDER")) {
		p->r->time_relative = 1;
		return key_number(p, t, tok_is(p, t, "YOUNGER") ?
				  MIX_VRULE_YOUNGER : MIX_VRULE_OLDER,
				  1, INT64_MAX, idx_r);
	}
	if (tok_is(p, t, "UID")) {
		struct token set;
		if ((ret = next(p, &set)) < 0 ||
		    (ret = add_node(p, MIX_VRULE_UID, &node)) < 0 ||
		    (ret = parse_set(p, &set, node)) < 0)
			return ret;
		*idx_r = node;
		return 0;
	}
	if (t->len > 0 && ((p->s[t->pos] >= '0' && p->s[t->pos] <= '9') ||
			   p->s[t->pos] == '*'))
		return perr(p, t->pos, "message sequence numbers are not "
			    "supported in a rule; use UID <set>");
	return perr(p, t->pos, "unknown search key");
}

static int parse_key(struct parser *p, unsigned depth, uint32_t *idx_r)
{
	struct token t;
	int ret;

	if ((ret = next(p, &t)) < 0)
		return ret;
	if (depth > MIX_VRULE_MAX_DEPTH)
		return perr(p, t.pos, "nested more than 64 deep");
	switch (t.kind) {
	case 0:
		return perr(p, t.pos, "expected a search key, found the end "
			    "of the rule");
	case ')':
		return perr(p, t.pos, "expected a search key, found ')'");
	case 'q':
		return perr(p, t.pos - 1, "expected a search key, found a "
			    "quoted string");
	case '(':
		if ((ret = parse_keys(p, depth + 1, 1, idx_r)) < 0)
			return ret;
		if ((ret = next(p, &t)) < 0)
			return ret;
		if (t.kind != ')')
			return perr(p, t.pos, "expected ')'");
		return 0;
	default:
		return key_word(p, &t, depth, idx_r);
	}
}

/* keys until ')' (in_paren) or the end; AND nodes lean right. */
static int parse_keys(struct parser *p, unsigned depth, int in_paren,
		      uint32_t *idx_r)
{
	uint32_t keys_small[16], *keys = keys_small, n = 0, cap = 16, i;
	struct token t;
	int ret = 0;

	for (;;) {
		if ((ret = peek(p, &t)) < 0)
			goto out;
		if (n > 0 && (t.kind == 0 || (in_paren && t.kind == ')')))
			break;
		if (!in_paren && t.kind == ')') {
			ret = perr(p, t.pos, "unbalanced ')'");
			goto out;
		}
		if (n == cap) {
			uint32_t *k = malloc(cap * 2 * sizeof(*k));
			if (k == NULL) {
				ret = -ENOMEM;
				goto out;
			}
			memcpy(k, keys, n * sizeof(*k));
			if (keys != keys_small)
				free(keys);
			keys = k;
			cap *= 2;
		}
		if ((ret = parse_key(p, depth, &keys[n])) < 0)
			goto out;
		n++;
	}
	*idx_r = keys[n - 1];
	for (i = n - 1; i-- > 0;) {
		uint32_t a = keys[i], b = *idx_r;
		if ((ret = add_node(p, MIX_VRULE_AND, idx_r)) < 0)
			goto out;
		p->r->nodes[*idx_r].a = a;
		p->r->nodes[*idx_r].b = b;
	}
out:
	if (keys != keys_small)
		free(keys);
	return ret;
}

int mix_vrule_parse(const char *text, struct mix_vrule **rule_r,
		    size_t *errpos_r)
{
	struct parser p;
	int ret;

	memset(&p, 0, sizeof(p));
	*rule_r = NULL;
	p.s = text;
	p.len = text ? strlen(text) : 0;
	if (p.len > MIX_VRULE_MAX_LEN) {
		ret = perr(&p, MIX_VRULE_MAX_LEN, "rule longer than 4096 bytes");
		goto fail;
	}
	p.r = calloc(1, sizeof(*p.r));
	if (p.r == NULL)
		return MIX_ENOMEM();
	if ((ret = parse_keys(&p, 0, 0, &p.r->root)) < 0)
		goto fail;
	*rule_r = p.r;
	return 0;
fail:
	if (errpos_r != NULL)
		*errpos_r = p.errpos;
	mix_vrule_free(&p.r);
	return ret;
}

void mix_vrule_free(struct mix_vrule **rule)
{
	struct mix_vrule *r = *rule;
	uint32_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->keyword_count; i++)
		free(r->keywords[i]);
	free(r->keywords);
	free(r->nodes);
	free(r->ranges);
	free(r);
	*rule = NULL;
}

static int uid_in(const struct mix_vrule *r, const struct mix_vrule_node *n,
		  uint32_t uid)
{
	uint32_t i;

	for (i = 0; i < n->u.set.count; i++) {
		const struct mix_vrule_range *g = &r->ranges[n->u.set.first + i];
		if (uid >= g->first && uid <= g->last)
			return 1;
	}
	return 0;
}

static int eval_node(const struct mix_vrule *r, uint32_t idx,
		     const struct mix_vrule_msg *m, uint64_t now)
{
	for (;;) {
		const struct mix_vrule_node *n = &r->nodes[idx];
		switch (n->op) {
		case MIX_VRULE_ALL:
			return 1;
		case MIX_VRULE_FLAG:
			return (m->flags & n->u.flag) != 0;
		case MIX_VRULE_KEYWORD:
			return (m->kw_mask >> n->u.slot) & 1;
		case MIX_VRULE_MODSEQ:
			return m->modseq >= n->u.n;
		case MIX_VRULE_UID:
			return uid_in(r, n, m->uid);
		case MIX_VRULE_SINCE:
			return m->received >= n->u.n;
		case MIX_VRULE_BEFORE:
			return m->received < n->u.n;
		case MIX_VRULE_ON:
			return m->received >= n->u.n &&
			       m->received - n->u.n < 86400;
		case MIX_VRULE_YOUNGER:
			return n->u.n >= now || m->received >= now - n->u.n;
		case MIX_VRULE_OLDER:
			return n->u.n <= now && m->received <= now - n->u.n;
		case MIX_VRULE_NOT:
			return !eval_node(r, n->a, m, now);
		case MIX_VRULE_OR:
			if (eval_node(r, n->a, m, now))
				return 1;
			idx = n->b;
			break;
		case MIX_VRULE_AND:
			if (!eval_node(r, n->a, m, now))
				return 0;
			idx = n->b;
			break;
		default:
			return 0;
		}
	}
}

int mix_vrule_eval(const struct mix_vrule *rule,
		   const struct mix_vrule_msg *msg, uint64_t now)
{
	return eval_node(rule, rule->root, msg, now);
}
