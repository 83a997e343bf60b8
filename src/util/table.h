/* The one way nemesyst and nemesyst-registry print a table for people: the columns are declared once (title,
 * alignment, an optional widest width), the rows are added cell by cell as text, and the widths come from the
 * content when the table is printed. Every line is the indent, then the cells two spaces apart; a left-aligned last
 * column is not padded, so no line ends in spaces. Widths count UTF-8 characters, not bytes (a wide character
 * such as a CJK ideograph counts as one). Control characters in a cell (a line break in an error) become spaces,
 * so one row is always one line. The JSON forms (--json, --summary-json) do not come through here. */
#ifndef NEM_UTIL_TABLE_H
#define NEM_UTIL_TABLE_H

#include <bson/bson.h>
#include <stdio.h>

typedef enum { NEM_TABLE_LEFT, NEM_TABLE_RIGHT } nem_table_align_t;

typedef struct {
    const char *title;       /* NULL in every column: a table without a header line (key/value lists) */
    nem_table_align_t align;
    size_t max;              /* 0: as wide as the widest cell; else a longer cell is cut to max characters, "..."
                              * ending it */
} nem_table_col_t;

/* The gap between two columns, in spaces. */
#define NEM_TABLE_GAP 2

typedef struct nem_table nem_table_t;

/* cols is copied (not its titles: they must outlive the table, as literals do). */
nem_table_t *nem_table_new(const nem_table_col_t *cols, size_t n_cols);
/* The next cell, left to right, a new row after the last column; NULL is shown as "-". */
void nem_table_add(nem_table_t *t, const char *text);
void nem_table_addf(nem_table_t *t, const char *fmt, ...) BSON_GNUC_PRINTF(2, 3);
/* Rows begun so far (a row given fewer cells than columns is printed with empty ones). */
size_t nem_table_rows(const nem_table_t *t);
/* The header (when the columns have titles) and every row, each line starting with indent (NULL: none). An empty
 * table prints its header alone. */
void nem_table_print(const nem_table_t *t, FILE *out, const char *indent);
void nem_table_destroy(nem_table_t *t);

/* Long listings, streamed (`runs`, `verify --all`): a table need not hold every row. nem_table_flush prints the rows
 * held (the header first, the first time) and drops them; the widths are fixed there, from those rows, the titles
 * and nem_table_min_width (which only a flushed table heeds), and every later print or flush uses them and prints no header. A cell wider than its
 * column later on pushes the rest of its row right; it is never cut (only max cuts). nem_table_flush_full flushes
 * once NEM_TABLE_BLOCK rows are held, so a listing of fewer rows prints exactly as an unflushed table does. Callers
 * that know a column's widest possible cell (a fixed-size id, a word from a list) say so with min_width, so that
 * the columns of a long listing stay aligned whatever its first rows. */
#define NEM_TABLE_BLOCK 1000
void nem_table_min_width(nem_table_t *t, size_t col, size_t width);
void nem_table_flush(nem_table_t *t, FILE *out, const char *indent);
bool nem_table_flush_full(nem_table_t *t, FILE *out, const char *indent);

/* The width of s in characters: its UTF-8 lead bytes. */
size_t nem_table_width(const char *s);

#endif
