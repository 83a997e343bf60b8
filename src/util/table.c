/* Tables for people (table.h): cells kept as text, widths computed when printed. */
#include "util/table.h"

#include <stdarg.h>
#include <string.h>

struct nem_table {
    nem_table_col_t *cols;
    size_t n_cols;
    char **cells;   /* row-major, n_cols per row */
    size_t n_cells, cap;
    size_t *min;    /* nem_table_min_width, per column */
    size_t *fixed;  /* the widths of the first flush, once flushed (NULL before) */
    bool flushing;  /* min applies to a flushed listing only: a short one prints as its rows say */
};

nem_table_t *nem_table_new(const nem_table_col_t *cols, size_t n_cols)
{
    nem_table_t *t = bson_malloc0(sizeof *t);
    t->n_cols = n_cols ? n_cols : 1;
    t->cols = bson_malloc0(t->n_cols * sizeof *t->cols);
    t->min = bson_malloc0(t->n_cols * sizeof *t->min);
    if (n_cols)
        memcpy(t->cols, cols, n_cols * sizeof *cols);
    return t;
}

static bool is_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t nem_table_width(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += !is_continuation((unsigned char)*s);
    return n;
}

/* A copy of text fit for one line of at most max characters (0: any). */
static char *cell_text(const char *text, size_t max)
{
    char *s = bson_strdup(text ? text : "-");
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    if (max && nem_table_width(s) > max) {
        size_t keep = max > 3 ? max - 3 : 0, chars = 0, cut = 0;
        /* the byte where character number keep starts: never inside a UTF-8 character */
        for (; s[cut]; cut++)
            if (!is_continuation((unsigned char)s[cut]) && chars++ == keep)
                break;
        s = bson_realloc(s, cut + 4);
        memcpy(s + cut, "...", 4);
        if (max < 3)
            s[max] = '\0';
    }
    return s;
}

void nem_table_add(nem_table_t *t, const char *text)
{
    if (t->n_cells == t->cap)
        t->cells = bson_realloc(t->cells, (t->cap = t->cap ? t->cap * 2 : 4 * t->n_cols) * sizeof *t->cells);
    const nem_table_col_t *col = &t->cols[t->n_cells % t->n_cols];
    t->cells[t->n_cells++] = cell_text(text, col->max);
}

void nem_table_addf(nem_table_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = bson_strdupv_printf(fmt, ap);
    va_end(ap);
    nem_table_add(t, s);
    bson_free(s);
}

size_t nem_table_rows(const nem_table_t *t)
{
    return (t->n_cells + t->n_cols - 1) / t->n_cols;
}

/* One line: cells padded to their column's width, two spaces apart; never ending in a space (an empty last cell). */
static void print_line(const nem_table_t *t, FILE *out, const char *indent, const char *const *cells,
                       const size_t *width)
{
    bson_string_t *line = bson_string_new(indent ? indent : "");
    size_t last = t->n_cols - 1;
    for (size_t c = 0; c < t->n_cols; c++) {
        const char *s = cells[c] ? cells[c] : "";
        size_t w = nem_table_width(s), pad = w < width[c] ? width[c] - w : 0; /* wider (after a flush): no pad */
        if (t->cols[c].align == NEM_TABLE_RIGHT)
            bson_string_append_printf(line, "%*s%s", (int)pad, "", s);
        else
            bson_string_append_printf(line, "%s%*s", s, c < last ? (int)pad : 0, "");
        if (c < last)
            bson_string_append_printf(line, "%*s", NEM_TABLE_GAP, "");
    }
    uint32_t keep = (uint32_t)strlen(indent ? indent : ""), len = line->len;
    while (len > keep && line->str[len - 1] == ' ')
        len--;
    bson_string_truncate(line, len);
    fprintf(out, "%s\n", line->str);
    bson_string_free(line, true);
}

void nem_table_min_width(nem_table_t *t, size_t col, size_t width)
{
    if (col < t->n_cols)
        t->min[col] = width;
}

void nem_table_print(const nem_table_t *t, FILE *out, const char *indent)
{
    size_t *width = bson_malloc0(t->n_cols * sizeof *width);
    const char **cells = bson_malloc0(t->n_cols * sizeof *cells);
    bool header = false;
    for (size_t c = 0; c < t->n_cols; c++) {
        header |= t->cols[c].title != NULL;
        width[c] = t->fixed ? t->fixed[c] : nem_table_width(t->cols[c].title);
        if (t->flushing && width[c] < t->min[c])
            width[c] = t->min[c];
    }
    for (size_t i = 0; i < t->n_cells && !t->fixed; i++) {
        size_t w = nem_table_width(t->cells[i]);
        if (w > width[i % t->n_cols])
            width[i % t->n_cols] = w;
    }
    if (header && !t->fixed) {
        for (size_t c = 0; c < t->n_cols; c++)
            cells[c] = t->cols[c].title;
        print_line(t, out, indent, cells, width);
    }
    for (size_t r = 0, rows = nem_table_rows(t); r < rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++)
            cells[c] = r * t->n_cols + c < t->n_cells ? t->cells[r * t->n_cols + c] : NULL;
        print_line(t, out, indent, cells, width);
    }
    bson_free(cells);
    if (t->fixed || !t->flushing)
        bson_free(width); /* a plain print changes nothing: printed again, the table prints whole again */
    else
        ((nem_table_t *)t)->fixed = width; /* after a flush, later prints keep these widths and print no header */
}

static void drop_rows(nem_table_t *t)
{
    for (size_t i = 0; i < t->n_cells; i++)
        bson_free(t->cells[i]);
    t->n_cells = 0;
}

void nem_table_flush(nem_table_t *t, FILE *out, const char *indent)
{
    t->flushing = true;
    nem_table_print(t, out, indent);
    drop_rows(t);
}

bool nem_table_flush_full(nem_table_t *t, FILE *out, const char *indent)
{
    if (t->n_cells < NEM_TABLE_BLOCK * t->n_cols)
        return false;
    nem_table_flush(t, out, indent);
    return true;
}

void nem_table_destroy(nem_table_t *t)
{
    if (!t)
        return;
    drop_rows(t);
    bson_free(t->cells);
    bson_free(t->cols);
    bson_free(t->min);
    bson_free(t->fixed);
    bson_free(t);
}
