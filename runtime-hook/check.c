/*
 * stasis check: what the engine found out about this kernel (cr/kernel/features.h), one
 * line per feature, "name: yes (detail)". Exit code 0 when everything a basic dump and
 * restore of a process needs is there ("Looks good."), 1 otherwise; missing optional
 * features (iterative or lazy migration, time namespaces, ...) are listed but do not fail
 * the check.
 *
 * stasis check --feature NAME answers one of criu's feature names the way criu does ("NAME
 * is supported", exit 0; else a warning and exit 1); --feature list prints the names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "commands.h"
#include "kernel/criu-features.h"
#include "kernel/features.h"
#include "options.h"

/* What is missing, over all lines. */
struct report {
	int missing_required;
	char missing[512];
	char missing_optional[512];
};

static void append(char *buf, size_t len, const char *name)
{
	size_t used = strlen(buf);

	snprintf(buf + used, len - used, "%s%s", used ? ", " : "", name);
}

static void print_line(struct report *rep, const struct kernel_feature_report *f)
{
	printf("%s: %s%s%s%s\n", f->name, f->present ? "yes" : "no", f->detail[0] ? " (" : "",
	       f->detail, f->detail[0] ? ")" : "");
	if (f->present || !f->counted)
		return;
	if (f->needed_by) {
		rep->missing_required++;
		append(rep->missing, sizeof(rep->missing), f->name);
	} else {
		append(rep->missing_optional, sizeof(rep->missing_optional), f->name);
	}
}

static int check_criu_feature(const char *name)
{
	char why[512] = "";
	int ret;

	if (!strcmp(name, "list")) {
		for (size_t i = 0; i < criu_feature_count(); i++)
			printf("%s%s", i ? " " : "", criu_feature_name(i));
		printf("\n");
		return 0;
	}
	ret = criu_feature_check(name, why, sizeof(why));
	if (ret == -ENOENT) {
		fprintf(stderr, "Error: Unknown feature %s (stasis check --feature list names them)\n",
			name);
		return 1;
	}
	if (ret == 1) {
		printf("%s is supported\n", name);
		return 0;
	}
	fflush(stdout);
	fprintf(stderr, "Warn: %s is not supported: %s\n", name, why);
	return 1;
}

int cmd_check(const struct stasis_opts *o)
{
	struct report rep = { 0 };
	struct utsname u;

	if (o->check_feature)
		return check_criu_feature(o->check_feature);
	if (uname(&u) == 0)
		printf("kernel: %s %s\n", u.release, u.machine);
	for (unsigned f = 0; f < KF_NR; f++) {
		/* a probe child must not inherit lines not yet written */
		fflush(stdout);
		print_line(&rep, kernel_feature_report(f));
	}
	if (rep.missing_optional[0])
		printf("Optional features missing: %s.\n", rep.missing_optional);
	if (rep.missing_required) {
		printf("stasis cannot dump and restore processes here; missing: %s.\n", rep.missing);
		return 1;
	}
	printf("Looks good.\n");
	return 0;
}
