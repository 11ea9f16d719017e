/* The model configuration of a run. The library knows every field by name
 * (dcrw_config_field, _set, _get), so nothing here lists them: a new run
 * takes its preset changed by --set NAME=VALUE, or the configuration of
 * its --init model file; run.json records the
 * preset and the fields that differ from it; a resumed run takes the
 * configuration its checkpoint holds, which run.json must agree with. The
 * channels are always the data's, and so are the height and width of a
 * new model unless --set gives them. */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "train.h"

static int is_channels(const char *name) {
    return strcmp(name, "channels") == 0;
}

static const char *type_hint(int type) {
    return type == DCRW_FIELD_ENCODER ? " (lstm|cnn)" : type == DCRW_FIELD_BOOL ? " (0|1)" : "";
}

void train_print_set_fields(FILE *f, const char *indent, int width) {
    const int start = (int)strlen(indent);
    int col = start;
    fputs(indent, f);
    for (int i = 0, first = 1; i < dcrw_config_field_count(); i++) {
        const char *name = NULL;
        int type = 0;
        dcrw_config_field(i, &name, &type, NULL, NULL, NULL);
        if (is_channels(name)) continue;
        char item[64];
        int n = snprintf(item, sizeof item, "%s%s", name, type_hint(type));
        if (!first && col + 2 + n > width) {
            fprintf(f, ",\n%s", indent);
            col = start;
        } else if (!first) {
            fputs(", ", f);
            col += 2;
        }
        fputs(item, f);
        col += n;
        first = 0;
    }
    fputc('\n', f);
}

/* --set for an unknown name: what the command line may set */
static void unknown_field(const char *name, size_t len) {
    char list[512];
    size_t n = 0;
    for (int i = 0; i < dcrw_config_field_count() && n < sizeof list; i++) {
        const char *f = NULL;
        dcrw_config_field(i, &f, NULL, NULL, NULL, NULL);
        if (!is_channels(f)) n += (size_t)snprintf(list + n, sizeof list - n, " %s", f);
    }
    cli_error("--set: unknown field '%.*s' (fields:%s)", (int)(len > 64 ? 64 : len), name, list);
}

/* One --set NAME=VALUE into @p cfg: 0, or -1 after a message. */
static int apply_assignment(dcrw_config *cfg, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq) {
        cli_error("--set '%.64s': expected field=value", assignment);
        return -1;
    }
    char name[64];
    size_t len = (size_t)(eq - assignment);
    if (len >= sizeof name) {
        unknown_field(assignment, len);
        return -1;
    }
    memcpy(name, assignment, len);
    name[len] = '\0';
    if (is_channels(name)) {
        cli_error("--set channels: the channels come from the data, not from --set");
        return -1;
    }
    int rc = dcrw_config_set(cfg, name, eq + 1);
    if (rc == DCRW_ENOTFOUND) unknown_field(name, len);
    if (rc != DCRW_OK && rc != DCRW_ENOTFOUND) cli_lib_error(rc, "--set %.64s", assignment);
    return rc == DCRW_OK ? 0 : -1;
}

/* The preset named in @p f; the name was checked when it was read. */
static void preset_config(const run_flags *f, dcrw_config *cfg) {
    dcrw_preset p = DCRW_PRESET_DCRW;
    dcrw_preset_from_name(f->preset, &p);
    dcrw_config_preset(cfg, p);
}

int train_sets_field(const char *const *sets, int nset, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < nset; i++)
        if (strncmp(sets[i], name, n) == 0 && sets[i][n] == '=') return 1;
    return 0;
}

int train_config_from_command_line(run_flags *f, const char *const *sets, int nset) {
    preset_config(f, &f->cfg);
    for (int i = 0; i < nset; i++)
        if (apply_assignment(&f->cfg, sets[i]) != 0) return -1;
    return 0;
}

/* What identifies a model in run.json: the FNV-1a hash of its parameters'
 * bytes. */
static uint64_t params_hash(const dcrw_model *m) {
    size_t n = 0;
    const float *p = dcrw_model_params(m, &n);
    return p ? train_fnv(TRAIN_FNV_START, p, n * sizeof *p) : TRAIN_FNV_START;
}

/* The model file at @p path into *m, its preset label into @p preset
 * ("" if none). A FIFO or device is refused before anything waits on it.
 * 0, or -1 after a message starting with @p what. */
static int load_init_model(const char *path, const char *what, dcrw_model **m, char preset[16]) {
    char why[160];
    if (cli_probe_regular(path, why, sizeof why) != 0) {
        cli_error("%s %s: not a usable dcrw model: %s", what, path, why);
        return -1;
    }
    dcrw_checkpoint_summary sum = {.size = sizeof sum};
    int rc = dcrw_checkpoint_info(path, &sum, NULL);
    if (rc == DCRW_OK) rc = dcrw_model_load(m, path);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "%s %s: not a usable dcrw model", what, path);
        return -1;
    }
    memcpy(preset, sum.preset, sizeof sum.preset);
    preset[15] = '\0';
    return 0;
}

int train_config_from_init(trainer_run *tr, const char *path, int preset_given) {
    run_flags *f = &tr->f;
    char preset[16];
    if (load_init_model(path, "--init", &tr->m, preset) != 0) return -1;
    /* run.json describes the configuration as a preset and the fields that
     * differ from it: the preset the file records, else the default */
    dcrw_preset p;
    int known = dcrw_preset_from_name(preset, &p) == DCRW_OK;
    if (preset_given && (!known || strcmp(preset, f->preset) != 0)) {
        cli_error("--preset %s: the model of --init %s is %s%s, and its configuration is the "
                  "run's; drop --preset",
                  f->preset, path, known ? "a model of preset " : "a custom model",
                  known ? preset : "");
        return -1;
    }
    if (known) snprintf(f->preset, sizeof f->preset, "%s", preset);
    f->cfg.size = sizeof f->cfg;
    dcrw_model_config(tr->m, &f->cfg);
    f->init = strdup(path);
    if (!f->init) {
        cli_error("out of memory");
        return -1;
    }
    f->init_params = dcrw_model_param_floats(tr->m);
    f->init_hash = params_hash(tr->m);
    return 0;
}

int train_config_record(run_flags *f) {
    dcrw_config preset;
    preset_config(f, &preset);
    f->nset = 0;
    for (int i = 0; i < dcrw_config_field_count(); i++) {
        const char *name = NULL;
        dcrw_config_field(i, &name, NULL, NULL, NULL, NULL);
        char mine[48], theirs[48];
        if (is_channels(name) || dcrw_config_get(&f->cfg, name, mine, sizeof mine) != DCRW_OK ||
            dcrw_config_get(&preset, name, theirs, sizeof theirs) != DCRW_OK ||
            strcmp(mine, theirs) == 0)
            continue;
        if (f->nset == RUN_SETS_MAX || strlen(name) >= sizeof f->sets[0].name) {
            cli_error("the configuration has more fields than run.json can hold");
            return -1;
        }
        run_set *s = &f->sets[f->nset++];
        snprintf(s->name, sizeof s->name, "%s", name);
        snprintf(s->value, sizeof s->value, "%s", mine);
    }
    return 0;
}

/* What run.json says the configuration is (the channels excepted when it
 * does not hold them): 0, or -1 after a message. */
static int config_of_run_file(const trainer_run *tr, dcrw_config *cfg) {
    const run_flags *f = &tr->f;
    if (f->cfg_given) {
        *cfg = f->cfg;
        return 0;
    }
    preset_config(f, cfg);
    for (int i = 0; i < f->nset; i++) {
        const run_set *s = &f->sets[i];
        if (is_channels(s->name)) {
            cli_error("%s: malformed run file: \"set\" may not hold the channels, which are "
                      "the data's",
                      tr->rd.json_path);
            return -1;
        }
        int rc = dcrw_config_set(cfg, s->name, s->value);
        if (rc != DCRW_OK) {
            cli_lib_error(rc, "%s: malformed run file: \"set\" of %.31s", tr->rd.json_path,
                          s->name);
            return -1;
        }
    }
    return 0;
}

/* A run started with --init and killed before its first checkpoint: the
 * same model again into tr->m, or -1 after a message if the file is gone
 * or now holds another. */
static int reload_init_model(trainer_run *tr) {
    const run_flags *f = &tr->f;
    char what[64], preset[16];
    snprintf(what, sizeof what, "%s starts from", tr->rd.json_path);
    if (load_init_model(f->init, what, &tr->m, preset) != 0) return -1;
    uint64_t n = dcrw_model_param_floats(tr->m), h = params_hash(tr->m);
    if (n == f->init_params && h == f->init_hash) return 0;
    cli_error("%s: the run started from the model in %s (%llu parameters, FNV-1a %016llx), but "
              "that file now holds another (%llu parameters, FNV-1a %016llx): put the model back "
              "there, or start a new run",
              tr->rd.json_path, f->init, (unsigned long long)f->init_params,
              (unsigned long long)f->init_hash, (unsigned long long)n, (unsigned long long)h);
    return -1;
}

int train_config_for_resume(trainer_run *tr) {
    dcrw_config want;
    if (config_of_run_file(tr, &want) != 0) return -1;
    tr->channels_from_data = !tr->f.cfg_given && tr->fresh && !tr->f.init;
    if (tr->fresh && !tr->f.init) {
        tr->f.cfg = want;
        return 0;
    }
    /* the checkpoint, or the model the run started from, holds the model:
     * its configuration is the run's */
    const char *from = tr->fresh ? tr->f.init : tr->rd.ckpt;
    if (tr->fresh && reload_init_model(tr) != 0) return -1;
    int rc = tr->fresh ? DCRW_OK : dcrw_model_load(&tr->m, tr->rd.ckpt);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "%s: cannot resume from it", tr->rd.ckpt);
        return -1;
    }
    tr->f.cfg.size = sizeof tr->f.cfg;
    dcrw_model_config(tr->m, &tr->f.cfg);
    if (!tr->f.cfg_given) want.channels = tr->f.cfg.channels;
    if (dcrw_config_equal(&want, &tr->f.cfg) != 1) {
        cli_error("%s: its preset and fields describe another model than %s holds",
                  tr->rd.json_path, from);
        return -1;
    }
    return 0;
}
