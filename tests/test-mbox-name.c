/*
 * Tests of mailbox names and LIST patterns (engine/mbox-name.c,
 * include/mix/mailbox-name.h, docs/mailbox-list.md "Names and patterns").
 *
 * Single-threaded.  Tables of good and bad names (each bad one with the
 * byte position its message must name), normalisation, split and parent,
 * random byte strings (errors inside the name; accepted names split and
 * join back);
 * tables of LIST patterns (RFC 9051 §6.3.9 and RFC 3501's reference
 * examples, plus our own) for match and match_children; a randomized
 * comparison of the matcher with a plain recursive reference matcher over
 * a small alphabet (seed from MIX_SEED, printed); and pathological
 * patterns, whose step count (not time) must stay within the
 * (name + 2) x (pattern + 1) bound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix/mailbox-name.h"
#include "mbox-name.h"
#include "tap.h"
#include "testutil.h"

/* ---- names -------------------------------------------------------------- */

static void sep_checks(void)
{
	static const char good[] = "/.\\:|!#~-_^";
	static const char bad[] = { 'a', 'Z', '5', ' ', '*', '%', '\n', 0x7f,
				    (char)0x80, 0 };
	size_t i;
	for (i = 0; good[i]; i++)
		is(mix_mbox_name_sep_check(good[i]), 0, "separator '%c' accepted", good[i]);
	for (i = 0; i < sizeof(bad); i++)
		is(mix_mbox_name_sep_check(bad[i]), MIX_EINVAL,
		   "separator 0x%02x refused", (unsigned char)bad[i]);
	is(mix_mbox_name_check("a", 1, 'x'), MIX_EINVAL, "check with separator 'x' refused");
}

struct good_name {
	const char *name;
	char sep;
	const char *normal;
};

static const struct good_name good_names[] = {
	{ "INBOX", '/', "INBOX" },
	{ "inbox", '/', "INBOX" },
	{ "Inbox/Sub", '/', "INBOX/Sub" },
	{ "iNbOx/inbox/Inbox", '/', "INBOX/inbox/Inbox" },
	{ "inbox.x", '.', "INBOX.x" },
	{ "inbox/x", '.', "inbox/x" },      /* '/' is no separator here */
	{ "INBOXes", '/', "INBOXes" },
	{ "inbox2", '/', "inbox2" },
	{ "Work/inbox", '/', "Work/inbox" },
	{ "a/b/c", '/', "a/b/c" },
	{ "a.b/c", '.', "a.b/c" },
	{ "Entw\xc3\xbcrfe", '/', "Entw\xc3\xbcrfe" },
	{ "\xe6\x97\xa5\xe6\x9c\xac/\xe3\x83\xa1", '/', "\xe6\x97\xa5\xe6\x9c\xac/\xe3\x83\xa1" },
	{ "\xf0\x9f\x98\x80", '/', "\xf0\x9f\x98\x80" },             /* U+1F600 */
	{ "x\xf4\x8f\xbf\xbf", '/', "x\xf4\x8f\xbf\xbf" },           /* U+10FFFF */
	{ "\xef\xbf\xbd", '/', "\xef\xbf\xbd" },                     /* U+FFFD */
	{ "\xc2\xa0nbsp", '/', "\xc2\xa0nbsp" },                     /* U+00A0 */
	{ "\xed\x9f\xbf", '/', "\xed\x9f\xbf" },                     /* U+D7FF */
	{ "\xee\x80\x80", '/', "\xee\x80\x80" },                     /* U+E000 */
	{ "a*b/%", '/', "a*b/%" },          /* wildcards are valid in names */
	{ "a b/ c ", '/', "a b/ c " },
	{ "#news.comp", '.', "#news.comp" },
};

static void good_name_checks(void)
{
	size_t i;
	char out[64];
	for (i = 0; i < sizeof(good_names) / sizeof(good_names[0]); i++) {
		const struct good_name *g = &good_names[i];
		int r = mix_mbox_name_check(g->name, strlen(g->name), g->sep);
		is(r, 0, "good name %zu '%s' accepted", i, g->name);
		if (r)
			diag("  message: %s", mix_last_error());
		memset(out, 'x', sizeof(out));
		is(mix_mbox_name_normalize(g->name, strlen(g->name), g->sep, out,
					   sizeof(out)), 0, "normalise '%s'", g->name);
		is_str(out, g->normal, "normal form of '%s'", g->name);
	}
}

struct bad_name {
	const char *name;
	size_t len;          /* 0: strlen */
	char sep;
	size_t pos;
	const char *what;    /* must appear in the message */
};

static const struct bad_name bad_names[] = {
	{ "", 0, '/', 0, "empty name" },
	{ "/", 0, '/', 0, "leading separator" },
	{ "/a", 0, '/', 0, "leading separator" },
	{ "a/", 0, '/', 1, "trailing separator" },
	{ "abc/def/", 0, '/', 7, "trailing separator" },
	{ "a//b", 0, '/', 2, "doubled separator" },
	{ "a..b", 0, '.', 2, "doubled separator" },
	{ "a/b//", 0, '/', 4, "doubled separator" },
	{ "a\x01" "b", 0, '/', 1, "control character" },
	{ "a/\t", 0, '/', 2, "control character" },
	{ "ab\x7f", 0, '/', 2, "control character" },
	{ "a\0b", 3, '/', 1, "control character" },
	{ "ab\xc2\x85", 0, '/', 2, "control character" },           /* C1 NEL */
	{ "\xc2\x9f", 0, '/', 0, "control character" },             /* C1 */
	{ "\xc0\xaf", 0, '/', 0, "overlong" },
	{ "\xc1\xbf", 0, '/', 0, "overlong" },
	{ "a\xe0\x80\xaf", 0, '/', 1, "overlong" },
	{ "a\xe0\x9f\xbf", 0, '/', 1, "overlong" },
	{ "ab\xf0\x82\x82\xac", 0, '/', 2, "overlong" },
	{ "\xed\xa0\x80", 0, '/', 0, "surrogate" },
	{ "xy/\xed\xbf\xbf", 0, '/', 3, "surrogate" },
	{ "x\xf4\x90\x80\x80", 0, '/', 1, "above U+10FFFF" },
	{ "x\xf5\x80\x80\x80", 0, '/', 1, "above U+10FFFF" },
	{ "x\xf7\xbf\xbf\xbf", 0, '/', 1, "above U+10FFFF" },
	{ "\xf8\x88\x80\x80\x80", 0, '/', 0, "never used" },
	{ "ok\xff", 0, '/', 2, "never used" },
	{ "a\x80", 0, '/', 1, "stray continuation" },
	{ "\xbf" "a", 0, '/', 0, "stray continuation" },
	{ "a\xc3", 0, '/', 1, "missing continuation" },
	{ "a\xe2\x82", 0, '/', 1, "missing continuation" },
	{ "a\xe2(\xa1", 0, '/', 1, "missing continuation" },
	{ "a\xf0\x9f\x98/", 0, '/', 1, "missing continuation" },
	{ "a\xe2\x80\xa8" "b", 0, '/', 1, "line separator" },
	{ "\xe2\x80\xa9", 0, '/', 0, "paragraph separator" },
	/* first problem wins */
	{ "a\x01//", 0, '/', 1, "control character" },
	{ "a//\x01", 0, '/', 2, "doubled separator" },
};

/* The byte position a message names ("at byte N"), or -1. */
static long msg_pos(const char *msg)
{
	const char *p = strstr(msg, "at byte ");
	return p ? strtol(p + 8, NULL, 10) : -1;
}

static void bad_name_check(const char *label, const char *name, size_t len,
			   char sep, size_t pos, const char *what)
{
	const char *msg;
	int r = mix_mbox_name_check(name, len, sep);
	is(r, MIX_EINVAL, "%s refused", label);
	msg = mix_last_error();
	is(msg_pos(msg), (long)pos, "%s: position in '%s'", label, msg);
	ok(strstr(msg, what) != NULL, "%s: message '%s' names '%s'", label, msg, what);
}

static void bad_name_checks(void)
{
	size_t i, k;
	char label[64], *big;
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		const struct bad_name *b = &bad_names[i];
		snprintf(label, sizeof(label), "bad name %zu", i);
		bad_name_check(label, b->name, b->len ? b->len : strlen(b->name),
			       b->sep, b->pos, b->what);
	}
	/* the limits: exactly at them is fine, one past is refused */
	big = malloc(2 * MIX_MBOX_NAME_MAX_LEN + 8);
	if (!big)
		BAIL("malloc");
	memset(big, 'a', MIX_MBOX_NAME_MAX_LEN + 1);
	is(mix_mbox_name_check(big, MIX_MBOX_NAME_MAX_LEN, '/'), 0,
	   "name of %u bytes accepted", MIX_MBOX_NAME_MAX_LEN);
	bad_name_check("name one byte too long", big, MIX_MBOX_NAME_MAX_LEN + 1,
		       '/', MIX_MBOX_NAME_MAX_LEN, "longer than 1000 bytes");
	/* a character straddling the limit */
	memcpy(big + MIX_MBOX_NAME_MAX_LEN - 1, "\xc3\xbc", 2);
	bad_name_check("name with a character across the limit", big,
		       MIX_MBOX_NAME_MAX_LEN + 1, '/', MIX_MBOX_NAME_MAX_LEN,
		       "longer than");
	for (k = 0; k <= MIX_MBOX_NAME_MAX_DEPTH; k++) {
		big[2 * k] = 'a';
		big[2 * k + 1] = '/';
	}
	is(mix_mbox_name_check(big, 2 * MIX_MBOX_NAME_MAX_DEPTH - 1, '/'), 0,
	   "name of %u levels accepted", MIX_MBOX_NAME_MAX_DEPTH);
	bad_name_check("name one level too deep", big,
		       2 * MIX_MBOX_NAME_MAX_DEPTH + 1, '/',
		       2 * MIX_MBOX_NAME_MAX_DEPTH - 1, "more than 64 levels");
	free(big);
}

static void normalize_split_parent_checks(void)
{
	struct mix_mbox_name_component c[MIX_MBOX_NAME_MAX_DEPTH];
	char buf[32] = "inBox/x";
	uint32_t n = 99;
	size_t plen = 99;

	is(mix_mbox_name_normalize(buf, 7, '/', buf, sizeof(buf)), 0, "normalise in place");
	is_str(buf, "INBOX/x", "in-place normal form");
	is(mix_mbox_name_normalize("inbox", 5, '/', buf, 5), MIX_EINVAL,
	   "output of len bytes (no room for NUL) refused");
	is_str(buf, "INBOX/x", "output untouched after refusal");
	is(mix_mbox_name_normalize("a//b", 4, '/', buf, sizeof(buf)), MIX_EINVAL,
	   "normalise refuses a bad name");

	is(mix_mbox_name_split("a/bc/def", 8, '/', c, MIX_MBOX_NAME_MAX_DEPTH, &n), 0, "split");
	is(n, 3, "three components");
	ok(c[0].offset == 0 && c[0].len == 1 && c[1].offset == 2 && c[1].len == 2 &&
	   c[2].offset == 5 && c[2].len == 3, "component offsets and lengths "
	   "(%u,%u) (%u,%u) (%u,%u)", c[0].offset, c[0].len, c[1].offset,
	   c[1].len, c[2].offset, c[2].len);
	is(mix_mbox_name_split("top", 3, '/', c, 1, &n), 0, "split top-level");
	is(n, 1, "one component");
	is(mix_mbox_name_split("a/b", 3, '/', c, 1, &n), MIX_EINVAL, "split into too small an array");
	is(msg_pos(mix_last_error()), 2, "position of the component that did not fit");
	is(mix_mbox_name_split("a/", 2, '/', c, 4, &n), MIX_EINVAL, "split refuses a bad name");

	is(mix_mbox_name_parent("a/bc/def", 8, '/', &plen), 1, "parent of a/bc/def");
	is(plen, 4, "parent is a/bc");
	is(mix_mbox_name_parent("a.b/c", 5, '.', &plen), 1, "parent with '.' separator");
	is(plen, 1, "parent is a");
	is(mix_mbox_name_parent("INBOX", 5, '/', &plen), 0, "INBOX has no parent");
	is(plen, 0, "parent length 0");
	is(mix_mbox_name_parent("/a", 2, '/', &plen), MIX_EINVAL, "parent refuses a bad name");
}

/* Random byte strings (biased to separators, ASCII and UTF-8 lead and
 * continuation bytes): check answers 0 or MIX_EINVAL with a position
 * inside the name (or at the length limit); an accepted name splits into
 * non-empty components that join back to it, and its parent is the join
 * of all but the last. */
static void random_name_checks(uint64_t seed)
{
	static const unsigned char bytes[] = { 'a', 'b', '/', '/', 0x01, 0x7f,
		0x80, 0xbf, 0xc2, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xff, 0x9f, 0xa0 };
	long rounds = (long)(20000 * tu_scale()), r, bad = 0, accepted = 0;
	for (r = 0; r < rounds && bad < 5; r++) {
		struct mix_mbox_name_component c[MIX_MBOX_NAME_MAX_DEPTH];
		char name[16], joined[40];
		size_t len = tu_rand_below(&seed, 12), k, jl = 0, plen;
		uint32_t n = 0, i;
		int rc, pr;
		for (k = 0; k < len; k++)
			name[k] = (char)bytes[tu_rand_below(&seed, sizeof(bytes))];
		rc = mix_mbox_name_check(name, len, '/');
		if (rc == MIX_EINVAL) {
			long pos = msg_pos(mix_last_error());
			if (pos < 0 || (size_t)pos > len || (len && (size_t)pos == len)) {
				ok(0, "round %ld: position %ld of '%s' outside the "
				   "name of %zu bytes", r, pos, mix_last_error(), len);
				bad++;
			}
			continue;
		}
		accepted++;
		if (rc != 0 || mix_mbox_name_split(name, len, '/', c,
						   MIX_MBOX_NAME_MAX_DEPTH, &n) != 0) {
			ok(0, "round %ld: check %d, split of an accepted name: %s",
			   r, rc, mix_last_error());
			bad++;
			continue;
		}
		plen = 0;
		for (i = 0; i < n; i++) {
			if (c[i].len == 0)
				bad++;
			if (i)
				joined[jl++] = '/';
			if (i + 1 == n)
				plen = jl ? jl - 1 : 0;
			memcpy(joined + jl, name + c[i].offset, c[i].len);
			jl += c[i].len;
		}
		pr = mix_mbox_name_parent(name, len, '/', &k);
		if (jl != len || memcmp(joined, name, len) != 0 ||
		    pr != (n > 1) || k != plen) {
			ok(0, "round %ld: split/join/parent of an accepted name "
			   "(%u components, parent %d len %zu want %zu)", r, n,
			   pr, k, plen);
			bad++;
		}
	}
	is(bad, 0, "%ld random byte strings: errors inside the name, accepted "
	   "ones (%ld) split, join and have their parent", r, accepted);
}

/* ---- patterns ----------------------------------------------------------- */

struct pat_case {
	const char *ref, *pat;
	char sep;
	const char *name;
	int match, children;
};

static const struct pat_case pat_cases[] = {
	/* RFC 9051 §6.3.9: '*' crosses the separator, '%' does not */
	{ "", "*", '/', "INBOX", 1, 1 },
	{ "", "*", '/', "a/b/c", 1, 1 },
	{ "", "%", '/', "a", 1, 0 },
	{ "", "%", '/', "a/b", 0, 0 },
	{ "", "%/%", '/', "a/b", 1, 0 },
	{ "", "%/%", '/', "a", 0, 1 },
	{ "", "%/%", '/', "a/b/c", 0, 0 },
	{ "", "foo*", '/', "foo", 1, 1 },
	{ "", "foo*", '/', "foobar", 1, 1 },
	{ "", "foo*", '/', "foo/bar/baz", 1, 1 },
	{ "", "foo%", '/', "foobar", 1, 0 },
	{ "", "foo%", '/', "foo/bar", 0, 0 },
	{ "", "foo%", '/', "fo", 0, 0 },
	/* RFC 9051 example: LIST "~/Mail/" "%" */
	{ "~/Mail/", "%", '/', "~/Mail/foo", 1, 0 },
	{ "~/Mail/", "%", '/', "~/Mail/meetings", 1, 0 },
	{ "~/Mail/", "%", '/', "~/Mail/foo/bar", 0, 0 },
	{ "~/Mail/", "%", '/', "~/Mail", 0, 1 },
	{ "~/Mail/", "%", '/', "~", 0, 1 },
	/* RFC 3501 reference table */
	{ "~smith/Mail/", "foo.*", '/', "~smith/Mail/foo.bar", 1, 1 },
	{ "archive/", "%", '/', "archive/2020", 1, 0 },
	{ "#news.", "comp.mail.*", '.', "#news.comp.mail.misc", 1, 1 },
	{ "#news.", "comp.mail.*", '.', "#news.comp.mail", 0, 1 },
	{ "#news.", "comp.mail.*", '.', "#news.comp", 0, 1 },
	{ "#news.", "comp.mail.*", '.', "#news.rec", 0, 0 },
	{ "~smith/Mail/", "/usr/doc/foo", '/', "/usr/doc/foo", 1, 0 },
	{ "~smith/Mail/", "/usr/doc/foo", '/', "~smith/Mail/usr/doc/foo", 0, 0 },
	/* wildcards in the middle */
	{ "", "a*b", '/', "a/x/b", 1, 1 },
	{ "", "a*b", '/', "ab", 1, 1 },
	{ "", "a%b", '/', "axxb", 1, 0 },
	{ "", "a%b", '/', "a/b", 0, 0 },
	{ "", "*/b", '/', "a/b", 1, 1 },
	{ "", "*/b", '/', "b", 0, 1 },
	{ "", "%/b", '/', "x/y/b", 0, 0 },
	{ "", "%/b", '/', "x", 0, 1 },
	{ "", "a/%/c", '/', "a/x/c", 1, 0 },
	{ "", "a/%/c", '/', "a", 0, 1 },
	{ "", "a/%/c", '/', "a/x", 0, 1 },
	{ "", "a/%/c", '/', "a/x/y", 0, 0 },
	{ "", "*a*a*b", '/', "aaab", 1, 1 },
	{ "", "*a*a*b", '/', "ab", 0, 1 },
	{ "", "x/*", '/', "x", 0, 1 },
	{ "", "x/*", '/', "y", 0, 0 },
	{ "", "x", '/', "x", 1, 0 },
	{ "", "x", '/', "X", 0, 0 },
	{ "", "x/y", '/', "x", 0, 1 },
	{ "", "x/y", '/', "xy", 0, 0 },
	/* case-sensitive, except the INBOX rule */
	{ "", "inbox", '/', "INBOX", 1, 0 },
	{ "", "InBoX/%", '/', "INBOX/a", 1, 0 },
	{ "", "inbox/%", '/', "INBOX", 0, 1 },
	{ "", "i*", '/', "INBOX", 1, 1 },
	{ "", "I%B%X", '/', "INBOX", 1, 0 },
	{ "", "inbox*", '/', "INBOXfoo", 0, 0 },
	{ "", "INBOX*", '/', "INBOXfoo", 1, 1 },
	{ "", "inbox/sub", '/', "INBOX/sub", 1, 0 },
	{ "", "inbox/sub", '/', "INBOX/Sub", 0, 0 },
	{ "", "Inbox", '/', "inbox", 1, 0 },
	{ "", "work/inbox", '/', "work/INBOX", 0, 0 },
	{ "", "a", '/', "A", 0, 0 },
	{ "inbox/", "%", '/', "INBOX/x", 1, 0 },
	/* UTF-8 passes through */
	{ "", "Entw%", '/', "Entw\xc3\xbcrfe", 1, 0 },
	{ "", "*\xc3\xbc*", '/', "a/\xc3\xbc/b", 1, 1 },
	/* wildcard runs */
	{ "", "a**b", '/', "a/b", 1, 1 },
	{ "", "a%*b", '/', "a/b", 1, 1 },
	{ "", "a%%b", '/', "a/b", 0, 0 },
	{ "x*", "*y", '/', "x/y", 1, 1 },
	/* an empty mailbox pattern compiles to the reference */
	{ "a/b", "", '/', "a/b", 1, 0 },
	{ "", "", '/', "a", 0, 0 },
};

static void pattern_case_checks(void)
{
	size_t i;
	for (i = 0; i < sizeof(pat_cases) / sizeof(pat_cases[0]); i++) {
		const struct pat_case *c = &pat_cases[i];
		struct mix_mbox_pattern *p = NULL;
		int r = mix_mbox_name_pattern_new(c->ref, strlen(c->ref), c->pat,
						  strlen(c->pat), c->sep, &p);
		is(r, 0, "pattern %zu ('%s' + '%s') compiles", i, c->ref, c->pat);
		if (r)
			continue;
		is(mix_mbox_name_match(p, c->name, strlen(c->name)), c->match,
		   "'%s' + '%s' %s '%s'", c->ref, c->pat,
		   c->match ? "matches" : "does not match", c->name);
		is(mix_mbox_name_match_children(p, c->name, strlen(c->name)),
		   c->children, "'%s' + '%s': a child of '%s' %s", c->ref,
		   c->pat, c->name, c->children ? "could match" : "cannot match");
		mix_mbox_name_pattern_free(&p);
		is(p, NULL, "free sets the pointer to NULL");
	}
}

static void pattern_text_checks(void)
{
	static const struct { const char *ref, *pat, *text; char sep; } t[] = {
		{ "~smith/Mail/", "foo.*", "~smith/Mail/foo.*", '/' },
		{ "archive/", "%", "archive/%", '/' },
		{ "#news.", "comp.mail.*", "#news.comp.mail.*", '.' },
		{ "~smith/Mail/", "/usr/doc/foo", "/usr/doc/foo", '/' },
		{ "archive/", "~fred/Mail/*", "archive/~fred/Mail/*", '/' },
		{ "foo/bar", "rag/baz", "foo/barrag/baz", '/' },
		{ "", "a**%%b", "a*b", '/' },
		{ "", "%%", "%", '/' },
		{ "", "%*%", "*", '/' },
		{ "x%", "%y", "x%y", '/' },
		{ "x%", "*y", "x*y", '/' },
	};
	size_t i, len;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct mix_mbox_pattern *p = NULL;
		if (mix_mbox_name_pattern_new(t[i].ref, strlen(t[i].ref), t[i].pat,
					      strlen(t[i].pat), t[i].sep, &p) < 0) {
			ok(0, "pattern '%s' + '%s' compiles: %s", t[i].ref,
			   t[i].pat, mix_last_error());
			continue;
		}
		is_str(mix_mbox_name_pattern_text(p, &len), t[i].text,
		       "'%s' + '%s' combined", t[i].ref, t[i].pat);
		is(len, strlen(t[i].text), "combined length");
		mix_mbox_name_pattern_free(&p);
	}
	mix_mbox_name_pattern_free(NULL);
}

static void pattern_error_checks(void)
{
	struct mix_mbox_pattern *p = NULL;
	char *big;
	is(mix_mbox_name_pattern_new("", 0, "a\x01", 2, '/', &p), MIX_EINVAL,
	   "control character in pattern refused");
	is(msg_pos(mix_last_error()), 1, "its position");
	ok(strstr(mix_last_error(), "LIST pattern") != NULL, "message names the pattern: %s",
	   mix_last_error());
	is(mix_mbox_name_pattern_new("ab\xc0\x80", 4, "%", 1, '/', &p), MIX_EINVAL,
	   "overlong UTF-8 in reference refused");
	is(msg_pos(mix_last_error()), 2, "its position");
	ok(strstr(mix_last_error(), "LIST reference") != NULL, "message names the reference: %s",
	   mix_last_error());
	is(mix_mbox_name_pattern_new("", 0, "%", 1, '*', &p), MIX_EINVAL,
	   "separator '*' refused");
	big = malloc(MIX_MBOX_PATTERN_MAX_LEN + 1);
	if (!big)
		BAIL("malloc");
	memset(big, '*', MIX_MBOX_PATTERN_MAX_LEN + 1);
	is(mix_mbox_name_pattern_new(big, MIX_MBOX_NAME_MAX_LEN, big,
				     MIX_MBOX_NAME_MAX_LEN + 1, '/', &p),
	   MIX_EINVAL, "reference + pattern over the limit refused");
	is(msg_pos(mix_last_error()), MIX_MBOX_PATTERN_MAX_LEN, "position of the limit");
	is(p, NULL, "no pattern returned on errors");
	free(big);
}

/* ---- the reference matcher ---------------------------------------------- */

/* Straight from RFC 9051's words, recursion and all: exponential, fine
 * for short strings.  fold: bytes of s below it compare ignoring ASCII
 * case (the INBOX rule). */
static int ref_eq(char pc, const char *s, const char *s0, size_t fold)
{
	size_t i = (size_t)(s - s0);
	if (pc == *s)
		return 1;
	return i < fold && (pc | 0x20) == (*s | 0x20) && (pc | 0x20) >= 'a' &&
	       (pc | 0x20) <= 'z';
}

static int ref_match(const char *p, const char *s, const char *s0, size_t fold,
		     char sep)
{
	if (!*p)
		return !*s;
	if (*p == '*')
		return ref_match(p + 1, s, s0, fold, sep) ||
		       (*s && ref_match(p, s + 1, s0, fold, sep));
	if (*p == '%')
		return ref_match(p + 1, s, s0, fold, sep) ||
		       (*s && *s != sep && ref_match(p, s + 1, s0, fold, sep));
	return *s && ref_eq(*p, s, s0, fold) && ref_match(p + 1, s + 1, s0, fold, sep);
}

/* Is there a non-empty u such that p matches s followed by u? */
static int ref_extend(const char *p, const char *s, const char *s0, size_t fold,
		      char sep)
{
	if (!*p)
		return 0;
	if (!*s)
		return 1;   /* any non-empty pattern matches some non-empty u */
	if (*p == '*')
		return ref_extend(p + 1, s, s0, fold, sep) || ref_extend(p, s + 1, s0, fold, sep);
	if (*p == '%')
		return ref_extend(p + 1, s, s0, fold, sep) ||
		       (*s != sep && ref_extend(p, s + 1, s0, fold, sep));
	return ref_eq(*p, s, s0, fold) && ref_extend(p + 1, s + 1, s0, fold, sep);
}

static size_t ref_fold(const char *s, char sep)
{
	size_t i;
	for (i = 0; i < 5; i++)
		if (!s[i] || (s[i] | 0x20) != "inbox"[i])
			return 0;
	return s[5] == '\0' || s[5] == sep ? 5 : 0;
}

static void random_string(uint64_t *seed, char *out, const char *alpha,
			  const char *const *prefixes, size_t maxlen)
{
	size_t n = 0, len, k;
	if (tu_rand_below(seed, 4) == 0) {
		const char *pre = prefixes[tu_rand_below(seed, 4)];
		memcpy(out, pre, strlen(pre));
		n = strlen(pre);
	}
	len = n + tu_rand_below(seed, (uint32_t)maxlen + 1);
	for (k = n; k < len; k++)
		out[k] = alpha[tu_rand_below(seed, (uint32_t)strlen(alpha))];
	out[len] = '\0';
}

static void random_checks(uint64_t seed)
{
	static const char *const name_pre[] = { "INBOX", "inbox", "INBOX/", "Inbox" };
	static const char *const pat_pre[] = { "inbox", "I", "iNBOX/", "*" };
	long rounds = (long)(30000 * tu_scale()), r, bad = 0;
	uint64_t steps_max = 0;
	for (r = 0; r < rounds && bad < 5; r++) {
		char name[32], ref[32], pat[32], comb[64], child[40];
		struct mix_mbox_pattern *p = NULL;
		uint64_t steps = 0;
		size_t fold, plen;
		int got, want, gotc, wantc;
		random_string(&seed, name, "ab/X*%", name_pre, 7);
		random_string(&seed, pat, "ab/*%x", pat_pre, 6);
		if (tu_rand_below(&seed, 4) == 0)
			random_string(&seed, ref, "a/*%", pat_pre, 3);
		else
			ref[0] = '\0';
		/* the combination rule, written independently */
		if (pat[0] == '/')
			snprintf(comb, sizeof(comb), "%s", pat);
		else
			snprintf(comb, sizeof(comb), "%s%s", ref, pat);
		if (mix_mbox_name_pattern_new(ref, strlen(ref), pat, strlen(pat),
					      '/', &p) < 0) {
			ok(0, "round %ld: '%s' + '%s' compiles: %s", r, ref,
			   pat, mix_last_error());
			bad++;
			continue;
		}
		fold = ref_fold(name, '/');
		want = ref_match(comb, name, name, fold, '/');
		got = mix_mbox_match_counted(p, name, strlen(name), 0, &steps);
		snprintf(child, sizeof(child), "%s/", name);
		wantc = ref_extend(comb, child, child, fold, '/');
		gotc = mix_mbox_match_counted(p, name, strlen(name), 1, &steps);
		plen = strlen(mix_mbox_name_pattern_text(p, NULL));
		if (steps > steps_max)
			steps_max = steps;
		if (got != want || gotc != wantc ||
		    steps > 2 * (strlen(name) + 2) * (plen + 1)) {
			ok(0, "round %ld: pattern '%s' (ref '%s' + '%s') name "
			   "'%s': match %d want %d, children %d want %d, "
			   "steps %llu", r, comb, ref, pat, name, got, want,
			   gotc, wantc, (unsigned long long)steps);
			bad++;
		}
		mix_mbox_name_pattern_free(&p);
	}
	is(bad, 0, "%ld random names and patterns agree with the reference "
	   "matcher (match and children)", r);
	diag("most steps for one name (match + children): %llu",
	     (unsigned long long)steps_max);
}

/* Soundness of match_children against real descendants: every random
 * descendant that matches has an ancestor for which match_children said 1. */
static void random_descendant_checks(uint64_t seed)
{
	long rounds = (long)(20000 * tu_scale()), r, bad = 0;
	for (r = 0; r < rounds && bad < 5; r++) {
		static const char *const pre[] = { "a", "b/", "INBOX/", "*" };
		char pat[32], name[32];
		struct mix_mbox_pattern *p = NULL;
		size_t k, n;
		random_string(&seed, pat, "ab/*%", pre, 6);
		n = 1 + tu_rand_below(&seed, 8);
		for (k = 0; k < n; k++)
			name[k] = (k % 2 && tu_rand_below(&seed, 2)) ? '/' : "ab"[tu_rand_below(&seed, 2)];
		if (name[n - 1] == '/')
			n--;
		name[n] = '\0';
		if (mix_mbox_name_check(name, n, '/') < 0 ||
		    mix_mbox_name_pattern_new("", 0, pat, strlen(pat), '/', &p) < 0)
			continue;
		if (mix_mbox_name_match(p, name, n)) {
			for (k = 1; k < n; k++) {
				if (name[k] == '/' && !mix_mbox_name_match_children(p, name, k)) {
					ok(0, "round %ld: '%s' matches '%s' but children "
					   "of '%.*s' cannot", r, pat, name, (int)k, name);
					bad++;
				}
			}
		}
		mix_mbox_name_pattern_free(&p);
	}
	is(bad, 0, "match_children never prunes a matching descendant (%ld rounds)", r);
}

/* ---- pathological patterns ---------------------------------------------- */

static void pathological_check(const char *label, const char *pat,
			       const char *name, int want)
{
	struct mix_mbox_pattern *p = NULL;
	uint64_t steps = 0;
	size_t n = strlen(name), m;
	if (mix_mbox_name_pattern_new("", 0, pat, strlen(pat), '/', &p) < 0) {
		ok(0, "%s compiles: %s", label, mix_last_error());
		return;
	}
	m = strlen(mix_mbox_name_pattern_text(p, NULL));
	is(mix_mbox_match_counted(p, name, n, 0, &steps), want, "%s: result", label);
	ok(steps <= (n + 2) * (m + 1), "%s: %llu steps within (%zu + 2) x (%zu + 1)",
	   label, (unsigned long long)steps, n, m);
	steps = 0;
	mix_mbox_match_counted(p, name, n, 1, &steps);
	ok(steps <= (n + 2) * (m + 1), "%s (children): %llu steps within bound",
	   label, (unsigned long long)steps);
	mix_mbox_name_pattern_free(&p);
}

static void pathological_checks(void)
{
	size_t n = MIX_MBOX_NAME_MAX_LEN, k;
	char *name = malloc(n + 1), *pat = malloc(MIX_MBOX_PATTERN_MAX_LEN + 1);
	if (!name || !pat)
		BAIL("malloc");
	memset(name, 'a', n);
	name[n] = '\0';
	pathological_check("*a*a*a*a*b on 1000 a", "*a*a*a*a*b", name, 0);
	pathological_check("%a%a%a%a%a%a%a%a%a%a%b on 1000 a",
			   "%a%a%a%a%a%a%a%a%a%a%b", name, 0);
	for (k = 0; k < MIX_MBOX_PATTERN_MAX_LEN; k += 2) {
		pat[k] = '*';
		pat[k + 1] = 'a';
	}
	pat[MIX_MBOX_PATTERN_MAX_LEN - 1] = 'b';
	pat[MIX_MBOX_PATTERN_MAX_LEN] = '\0';
	pathological_check("(*a) x 999 *b on 1000 a", pat, name, 0);
	for (k = 0; k < n; k += 2)
		name[k + 1] = '/';
	name[n - 1] = 'a';
	pathological_check("(*a) x 999 *b on a/a/...", pat, name, 0);
	memset(name, 'a', n);
	name[n - 1] = 'b';
	pat[MIX_MBOX_PATTERN_MAX_LEN - 1] = 'b';
	memset(pat, '*', 3);
	pat[3] = 'b';
	pat[4] = '\0';
	pathological_check("*b on a...ab", pat, name, 1);
	free(name);
	free(pat);
}

int main(void)
{
	uint64_t seed = tu_seed();
	sep_checks();
	good_name_checks();
	bad_name_checks();
	normalize_split_parent_checks();
	pattern_case_checks();
	pattern_text_checks();
	pattern_error_checks();
	random_name_checks(seed ^ 0x9e3779b9u);
	random_checks(seed);
	random_descendant_checks(seed ^ 0x5bd1e995u);
	pathological_checks();
	return tap_done();
}
