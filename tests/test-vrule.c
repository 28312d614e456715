/*
 * Tests of engine/vrule.c, the virtual mailbox rule (docs/virtual.md "Rule
 * syntax"): good rules evaluated on chosen messages, bad rules with the
 * byte position their error names, and random rules whose evaluation on
 * random messages must agree with a direct reference evaluator, and
 * mutated or random text that must parse or be refused with a position
 * inside it.  Seed from MIX_SEED (always printed).
 */
#include <strings.h>
#include <time.h>

#include "tap.h"
#include "testutil.h"
#include "vrule.h"

#define DAY 86400u
/* 1-Feb-2026 00:00:00 UTC */
#define FEB1 UINT64_C(1769904000)

static const char *kw_pool[] = { "todo", "$Important", "Work", "x.y" };
#define KW_POOL 4

struct msg {
	struct mix_vrule_msg m;
	unsigned kws;           /* bit i: kw_pool[i] */
};

/* The slot mask a sync would compute: slot s is set if the message has a
 * keyword equal to the rule's slot name ignoring case. */
static uint64_t slot_mask(const struct mix_vrule *r, unsigned kws)
{
	uint64_t mask = 0;
	uint32_t s, i;

	for (s = 0; s < r->keyword_count; s++)
		for (i = 0; i < KW_POOL; i++)
			if ((kws >> i & 1) &&
			    strcasecmp(r->keywords[s], kw_pool[i]) == 0)
				mask |= UINT64_C(1) << s;
	return mask;
}

static int eval_text(const char *text, const struct msg *msg, uint64_t now)
{
	struct mix_vrule *r;
	struct mix_vrule_msg m = msg->m;
	int ret;

	if (mix_vrule_parse(text, &r, NULL) < 0) {
		diag("parse '%s': %s", text, mix_last_error());
		return -1;
	}
	m.kw_mask = slot_mask(r, msg->kws);
	ret = mix_vrule_eval(r, &m, now);
	mix_vrule_free(&r);
	return ret;
}

static void test_good(void)
{
	struct msg a = { { 5, MIX_FLAG_SEEN | MIX_FLAG_FLAGGED, 100,
			   FEB1 + 3600, 0 }, 1 };      /* todo */
	struct msg b = { { 9, MIX_FLAG_DRAFT, 7, FEB1 - 10, 0 }, 2 };
	uint64_t now = FEB1 + 2 * DAY;
	static const struct {
		const char *text;
		int a, b;
	} cases[] = {
		{ "ALL", 1, 1 },
		{ "all", 1, 1 },
		{ "SEEN", 1, 0 },            { "UNSEEN", 0, 1 },
		{ "FLAGGED", 1, 0 },         { "UNFLAGGED", 0, 1 },
		{ "DELETED", 0, 0 },         { "UNDELETED", 1, 1 },
		{ "ANSWERED", 0, 0 },        { "UNANSWERED", 1, 1 },
		{ "DRAFT", 0, 1 },           { "UNDRAFT", 1, 0 },
		{ "KEYWORD TODO", 1, 0 },    { "keyword todo", 1, 0 },
		{ "UNKEYWORD ToDo", 0, 1 },  { "KEYWORD $important", 0, 1 },
		{ "KEYWORD nosuch", 0, 0 },
		{ "NOT SEEN", 0, 1 },        { "NOT NOT SEEN", 1, 0 },
		{ "OR SEEN DRAFT", 1, 1 },   { "SEEN DRAFT", 0, 0 },
		{ "SEEN FLAGGED", 1, 0 },    { "(SEEN FLAGGED)", 1, 0 },
		{ "((SEEN) (FLAGGED))", 1, 0 },
		{ "OR (SEEN DRAFT) (UNSEEN DRAFT)", 0, 1 },
		{ "  SEEN\tFLAGGED  ", 1, 0 },
		{ "MODSEQ 100", 1, 0 },      { "MODSEQ 7", 1, 1 },
		{ "MODSEQ 101", 0, 0 },
		{ "MODSEQ \"/flags/\\\\seen\" all 50", 1, 0 },
		{ "UID 5", 1, 0 },           { "UID 1,3:5,7:*", 1, 1 },
		{ "UID 6:8", 0, 0 },         { "UID 10:9", 0, 1 },
		{ "UID *:6", 0, 1 },
		{ "SINCE 1-Feb-2026", 1, 0 },  { "BEFORE 1-Feb-2026", 0, 1 },
		{ "ON 1-Feb-2026", 1, 0 },     { "ON 31-Jan-2026", 0, 1 },
		{ "SINCE \"01-feb-2026\"", 1, 0 },
		{ "SINCE 2-Feb-2026", 0, 0 },
		{ "YOUNGER 172800", 1, 0 },  { "YOUNGER 172811", 1, 1 },
		{ "OLDER 172800", 0, 1 },    { "OLDER 1", 1, 1 },
		{ "OLDER 999999999999", 0, 0 },
		{ "YOUNGER 999999999999", 1, 1 },
		{ "SEEN OR DRAFT (KEYWORD todo NOT DELETED)", 1, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		is(eval_text(cases[i].text, &a, now), cases[i].a,
		   "'%s' on message a", cases[i].text);
		is(eval_text(cases[i].text, &b, now), cases[i].b,
		   "'%s' on message b", cases[i].text);
	}
}

static void test_properties(void)
{
	struct mix_vrule *r;
	uint64_t t;

	ok(mix_vrule_parse("KEYWORD a KEYWORD A UNKEYWORD b", &r, NULL) == 0,
	   "parse keywords");
	is(r->keyword_count, 2, "keywords differing in case share a slot");
	is(r->time_relative, 0, "no YOUNGER/OLDER: not time relative");
	mix_vrule_free(&r);
	is(r, NULL, "free sets the pointer to NULL");
	ok(mix_vrule_parse("SEEN OR YOUNGER 5 DRAFT", &r, NULL) == 0,
	   "parse YOUNGER");
	is(r->time_relative, 1, "YOUNGER makes it time relative");
	mix_vrule_free(&r);
	ok(mix_vrule_parse_date("29-Feb-2024", 11, &t) == 0, "leap day 2024");
	ok(mix_vrule_parse_date("29-Feb-2026", 11, &t) < 0, "no 29-Feb-2026");
	ok(mix_vrule_parse_date("1-Jan-1970", 10, &t) == 0 && t == 0,
	   "1-Jan-1970 is 0");
	ok(mix_vrule_parse_date("1-Feb-2026", 10, &t) == 0 && t == FEB1,
	   "1-Feb-2026");
}

static void test_bad(void)
{
	static const struct {
		const char *text;
		size_t pos;
	} cases[] = {
		{ "", 0 },
		{ "   ", 3 },
		{ "SEEN BOGUS", 5 },
		{ "SEEN )", 5 },
		{ "(SEEN", 5 },
		{ "( )", 2 },
		{ "OR SEEN", 7 },
		{ "NOT", 3 },
		{ "KEYWORD", 7 },
		{ "KEYWORD \\Seen", 8 },
		{ "KEYWORD \"quoted\"", 9 },
		{ "UNKEYWORD a*b", 10 },
		{ "MODSEQ x", 7 },
		{ "MODSEQ 9223372036854775808", 7 },
		{ "MODSEQ \"/flags/x\" bogus 5", 18 },
		{ "UID", 3 },
		{ "UID 0", 4 },
		{ "UID 1,,3", 6 },
		{ "UID 1:x", 6 },
		{ "UID 1,", 5 },
		{ "UID 4294967296", 4 },
		{ "1:5", 0 },
		{ "SINCE 31-Feb-2026", 6 },
		{ "SINCE 1-Foo-2026", 6 },
		{ "BEFORE 1-Feb-26", 7 },
		{ "ON 1-Jan-1969", 3 },
		{ "ON", 2 },
		{ "YOUNGER 0", 8 },
		{ "OLDER -5", 6 },
		{ "SEEN \"x", 5 },
		{ "\"SEEN\"", 0 },
	};
	size_t i, pos;
	struct mix_vrule *r;
	char deep[200];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pos = 99999;
		r = NULL;
		is(mix_vrule_parse(cases[i].text, &r, &pos), MIX_EINVAL,
		   "'%s' is refused", cases[i].text);
		is(pos, cases[i].pos, "'%s': error at byte %zu (%s)",
		   cases[i].text, cases[i].pos, mix_last_error());
		is(r, NULL, "no rule returned");
	}
	memset(deep, '(', sizeof(deep));
	memcpy(deep + 150, "SEEN", 5);
	is(mix_vrule_parse(deep, &r, &pos), MIX_EINVAL, "deep nesting refused");
	ok(pos <= 70, "at the 65th level (pos %zu)", pos);
}

/* ---- random rules vs a reference -------------------------------------- */

struct gen {
	uint64_t *seed;
	char buf[4096];
	size_t len;
};

static void emit(struct gen *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void emit(struct gen *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g->len += (size_t)vsnprintf(g->buf + g->len, sizeof(g->buf) - g->len,
				    fmt, ap);
	va_end(ap);
	if (g->len >= sizeof(g->buf))
		BAIL("rule text too long");
}

static const char *date_text(uint64_t t, char *buf, size_t size)
{
	static const char *mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	snprintf(buf, size, "%d-%s-%d", tm.tm_mday, mon[tm.tm_mon],
		 tm.tm_year + 1900);
	return buf;
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Generate one key into g->buf and return its value on msg directly. */
static int gen_key(struct gen *g, const struct msg *msg, uint64_t now,
		   int depth)
{
	static const struct { const char *w; uint8_t f; } fl[] = {
		{ "SEEN", MIX_FLAG_SEEN }, { "FLAGGED", MIX_FLAG_FLAGGED },
		{ "DELETED", MIX_FLAG_DELETED },
		{ "ANSWERED", MIX_FLAG_ANSWERED }, { "DRAFT", MIX_FLAG_DRAFT },
	};
	uint32_t k = tu_rand_below(g->seed, depth > 4 ? 9 : 13);
	char d[32];

	switch (k) {
	case 0:
		emit(g, "ALL");
		return 1;
	case 1: case 2: {
		uint32_t i = tu_rand_below(g->seed, 5), un = k == 2;
		emit(g, "%s%s", un ? "UN" : "", fl[i].w);
		return ((msg->m.flags & fl[i].f) != 0) != un;
	}
	case 3: {
		uint32_t i = tu_rand_below(g->seed, KW_POOL + 1), j;
		int un = tu_rand_below(g->seed, 2), has;
		char name[32];
		snprintf(name, sizeof(name), "%s",
			 i < KW_POOL ? kw_pool[i] : "other");
		for (j = 0; name[j]; j++)
			if (tu_rand_below(g->seed, 2))
				name[j] = (char)(name[j] ^ (is_alpha(name[j]) ? 0x20 : 0));
		has = i < KW_POOL && (msg->kws >> i & 1);
		emit(g, "%s %s", un ? "UNKEYWORD" : "KEYWORD", name);
		return has != un;
	}
	case 4: {
		uint64_t n = tu_rand_below(g->seed, 40);
		emit(g, "MODSEQ %llu", (unsigned long long)n);
		return msg->m.modseq >= n;
	}
	case 5: {
		uint32_t a = 1 + tu_rand_below(g->seed, 30), b;
		int star = tu_rand_below(g->seed, 3) == 0, in;
		b = star ? UINT32_MAX : 1 + tu_rand_below(g->seed, 30);
		if (star)
			emit(g, "UID 40,%u:*", a);
		else
			emit(g, "UID 40,%u:%u", a, b);
		in = msg->m.uid == 40 ||
		     (msg->m.uid >= (a < b ? a : b) &&
		      msg->m.uid <= (a < b ? b : a));
		return in;
	}
	case 6: case 7: {
		uint64_t day = FEB1 + (uint64_t)tu_rand_below(g->seed, 9) * DAY -
			       4 * DAY;
		uint32_t w = tu_rand_below(g->seed, 3);
		date_text(day, d, sizeof(d));
		emit(g, "%s %s", w == 0 ? "SINCE" : w == 1 ? "BEFORE" : "ON",
		     d);
		if (w == 0)
			return msg->m.received >= day;
		if (w == 1)
			return msg->m.received < day;
		return msg->m.received >= day && msg->m.received < day + DAY;
	}
	case 8: {
		uint64_t n = 1 + tu_rand_below(g->seed, 8 * DAY);
		int y = tu_rand_below(g->seed, 2);
		emit(g, "%s %llu", y ? "YOUNGER" : "OLDER",
		     (unsigned long long)n);
		return y ? msg->m.received + n >= now
			 : msg->m.received + n <= now;
	}
	case 9: {
		int v;
		emit(g, "NOT ");
		v = gen_key(g, msg, now, depth + 1);
		return !v;
	}
	case 10: {
		int a, b;
		emit(g, "OR ");
		a = gen_key(g, msg, now, depth + 1);
		emit(g, " ");
		b = gen_key(g, msg, now, depth + 1);
		return a || b;
	}
	default: {
		uint32_t n = 1 + tu_rand_below(g->seed, 3), i;
		int v = 1;
		emit(g, "(");
		for (i = 0; i < n; i++) {
			if (i)
				emit(g, " ");
			v &= gen_key(g, msg, now, depth + 1);
		}
		emit(g, ")");
		return v;
	}
	}
}

static void random_msg(uint64_t *seed, struct msg *m)
{
	m->m.uid = 1 + tu_rand_below(seed, 45);
	m->m.flags = (uint8_t)(tu_rand_below(seed, 32));
	m->m.modseq = tu_rand_below(seed, 40);
	m->m.received = FEB1 - 5 * DAY + tu_rand_below(seed, 11 * DAY);
	m->kws = tu_rand_below(seed, 1u << KW_POOL);
}

/* One random rule text generated against msg gives the reference value;
 * the same text is then parsed and evaluated on other random messages by
 * regenerating with the same seed (the text does not depend on msg). */
static void test_random(uint64_t seed)
{
	int rules = 400, per = 20, r, i, bad = 0;

	for (r = 0; r < rules && bad < 5; r++) {
		uint64_t rs = seed ^ (uint64_t)r * 0x9e3779b97f4a7c15ull;
		uint64_t ms = rs + 1;
		struct mix_vrule *rule = NULL;
		uint64_t now = FEB1 + tu_rand_below(&ms, 3 * DAY);
		char text[4096];

		for (i = 0; i < per; i++) {
			struct gen g = { .len = 0 };
			uint64_t s = rs;
			struct msg m;
			struct mix_vrule_msg vm;
			int want, got;
			random_msg(&ms, &m);
			g.seed = &s;
			want = gen_key(&g, &m, now, 0);
			if (i == 0) {
				memcpy(text, g.buf, g.len + 1);
				if (mix_vrule_parse(text, &rule, NULL) < 0) {
					ok(0, "random rule %d parses: '%s': %s",
					   r, text, mix_last_error());
					bad++;
					break;
				}
			}
			vm = m.m;
			vm.kw_mask = slot_mask(rule, m.kws);
			got = mix_vrule_eval(rule, &vm, now);
			if (got != want) {
				ok(0, "rule %d '%s' on uid %u flags %#x modseq "
				   "%llu received %llu kws %#x now %llu: got %d "
				   "expected %d", r, text, m.m.uid, m.m.flags,
				   (unsigned long long)m.m.modseq,
				   (unsigned long long)m.m.received, m.kws,
				   (unsigned long long)now, got, want);
				bad++;
			}
		}
		mix_vrule_free(&rule);
	}
	is(bad, 0, "%d random rules agree with the reference on %d messages "
	   "each", rules, per);
}

/* Random mutations of valid rules and random bytes: each parses, or is
 * refused with MIX_EINVAL and a position inside the text; never a crash
 * (run under ASan by make asan). */
static void test_fuzz(uint64_t seed)
{
	static const char alphabet[] = "()\" *:,-0123456789ALNOTRSEKYWDUIDFGMQ"
				       "\\\t aeon";
	int i, bad = 0;
	uint64_t s = seed ^ 0x5bd1e995u;

	for (i = 0; i < 20000 && bad < 5; i++) {
		struct gen g = { .len = 0 };
		struct msg m;
		struct mix_vrule *r = NULL;
		size_t pos = 99999, len, k;
		int ret;
		random_msg(&s, &m);
		g.seed = &s;
		if (i % 2 == 0) {
			gen_key(&g, &m, FEB1, 0);
			for (k = 0; k < 1 + tu_rand_below(&s, 3) && g.len > 0; k++)
				g.buf[tu_rand_below(&s, (uint32_t)g.len)] =
					alphabet[tu_rand_below(&s,
						sizeof(alphabet) - 1)];
		} else {
			g.len = tu_rand_below(&s, 40);
			for (k = 0; k < g.len; k++)
				g.buf[k] = (char)(1 + tu_rand_below(&s, 255));
			g.buf[g.len] = '\0';
		}
		len = strlen(g.buf);
		ret = mix_vrule_parse(g.buf, &r, &pos);
		if (ret == 0 ? r == NULL : (ret != MIX_EINVAL || r != NULL ||
					    pos > len)) {
			ok(0, "fuzz '%s': ret %d, position %zu of %zu", g.buf,
			   ret, pos, len);
			bad++;
		}
		mix_vrule_free(&r);
	}
	is(bad, 0, "20000 mutated and random rules: parsed or refused with a "
	   "position inside the text");
}

int main(void)
{
	uint64_t seed = tu_seed();

	test_good();
	test_properties();
	test_bad();
	test_random(seed);
	test_fuzz(seed);
	return tap_done();
}
