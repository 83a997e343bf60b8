/* Unit suite: the one table renderer (src/util/table.c) and the one status vocabulary (src/util/status.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/status.h"
#include "util/table.h"

/* What nem_table_print writes, as a string (free it). */
static char *printed(const nem_table_t *t, const char *indent)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    nem_table_print(t, f, indent);
    fclose(f);
    return buf;
}

static const nem_table_col_t cols[] = {
    {"name", NEM_TABLE_LEFT, 0}, {"n", NEM_TABLE_RIGHT, 0}, {"note", NEM_TABLE_LEFT, 0}};

/* A flushed listing: the first flush prints the header and fixes the widths (its rows', or nem_table_min_width's),
 * a later flush prints rows only, in those widths; a plain print changes nothing. */
START_TEST(a_flushed_table_keeps_its_first_widths)
{
    nem_table_t *t = nem_table_new(cols, 3);
    nem_table_add(t, "ab");
    nem_table_add(t, "1");
    nem_table_add(t, "x");
    char *once = printed(t, NULL), *twice = printed(t, NULL);
    ck_assert_str_eq(once, twice); /* printing is no flush */
    free(once);
    free(twice);
    nem_table_min_width(t, 0, 6);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    nem_table_flush(t, f, NULL);
    ck_assert_uint_eq(nem_table_rows(t), 0);
    nem_table_add(t, "a-much-longer-name");
    nem_table_add(t, "22");
    nem_table_add(t, "y");
    nem_table_flush(t, f, NULL);
    fclose(f);
    ck_assert_str_eq(buf, "name    n  note\n"
                          "ab      1  x\n"
                          "a-much-longer-name  22  y\n");
    free(buf);
    nem_table_destroy(t);
}
END_TEST

START_TEST(widths_come_from_the_content)
{
    nem_table_t *t = nem_table_new(cols, 3);
    nem_table_add(t, "a");
    nem_table_addf(t, "%d", 7);
    nem_table_add(t, "x");
    nem_table_add(t, "longer-name");
    nem_table_addf(t, "%d", 12345);
    nem_table_add(t, "y");
    ck_assert_uint_eq(nem_table_rows(t), 2);
    char *s = printed(t, NULL);
    ck_assert_str_eq(s, "name             n  note\n"
                        "a                7  x\n"
                        "longer-name  12345  y\n");
    free(s);
    nem_table_destroy(t);
}
END_TEST

START_TEST(titles_wider_than_cells_set_the_width)
{
    static const nem_table_col_t wide[] = {{"documents", NEM_TABLE_RIGHT, 0}, {"status", NEM_TABLE_LEFT, 0}};
    nem_table_t *t = nem_table_new(wide, 2);
    nem_table_add(t, "3");
    nem_table_add(t, "ok");
    char *s = printed(t, "  ");
    ck_assert_str_eq(s, "  documents  status\n"
                        "          3  ok\n");
    free(s);
    nem_table_destroy(t);
}
END_TEST

START_TEST(no_line_ends_in_a_space)
{
    nem_table_t *t = nem_table_new(cols, 3);
    nem_table_add(t, "a");
    nem_table_add(t, "1");
    nem_table_add(t, "");        /* an empty last cell */
    nem_table_add(t, "b");       /* a row given fewer cells than columns */
    char *s = printed(t, NULL);
    ck_assert_str_eq(s, "name  n  note\n"
                        "a     1\n"
                        "b\n");
    free(s);
    nem_table_destroy(t);
}
END_TEST

START_TEST(an_empty_table_prints_its_header)
{
    nem_table_t *t = nem_table_new(cols, 3);
    ck_assert_uint_eq(nem_table_rows(t), 0);
    char *s = printed(t, NULL);
    ck_assert_str_eq(s, "name  n  note\n");
    free(s);
    nem_table_destroy(t);
    /* without titles and rows: nothing at all */
    static const nem_table_col_t bare[] = {{NULL, NEM_TABLE_LEFT, 0}, {NULL, NEM_TABLE_LEFT, 0}};
    t = nem_table_new(bare, 2);
    s = printed(t, "  ");
    ck_assert_str_eq(s, "");
    free(s);
    nem_table_add(t, "key");
    nem_table_add(t, "value");
    nem_table_add(t, "a-longer-key");
    nem_table_add(t, NULL); /* shown as "-" */
    s = printed(t, "  ");
    ck_assert_str_eq(s, "  key           value\n"
                        "  a-longer-key  -\n");
    free(s);
    nem_table_destroy(t);
}
END_TEST

START_TEST(long_cells_are_cut_to_the_column_limit)
{
    static const nem_table_col_t capped[] = {{"id", NEM_TABLE_LEFT, 0}, {"why", NEM_TABLE_LEFT, 8}};
    nem_table_t *t = nem_table_new(capped, 2);
    nem_table_add(t, "1");
    nem_table_add(t, "a much longer explanation");
    nem_table_add(t, "2");
    nem_table_add(t, "fits");
    nem_table_add(t, "3");
    nem_table_add(t, "eight ch"); /* exactly the limit: kept whole */
    char *s = printed(t, NULL);
    ck_assert_str_eq(s, "id  why\n"
                        "1   a muc...\n"
                        "2   fits\n"
                        "3   eight ch\n");
    free(s);
    nem_table_destroy(t);
}
END_TEST

START_TEST(long_cells_without_a_limit_widen_the_column)
{
    nem_table_t *t = nem_table_new(cols, 3);
    char big[301];
    memset(big, 'x', 300);
    big[300] = '\0';
    nem_table_add(t, big);
    nem_table_add(t, "1");
    nem_table_add(t, "z");
    nem_table_add(t, "b");
    nem_table_add(t, "2");
    nem_table_add(t, "w");
    char *s = printed(t, NULL);
    char *second = strchr(s, '\n') + 1, *third = strchr(second, '\n') + 1;
    ck_assert_uint_eq((size_t)(third - second), 300 + 2 + 1 + 2 + 1 + 1); /* cell, gap, n, gap, note, newline */
    ck_assert(strncmp(third, "b    ", 5) == 0);
    ck_assert_uint_eq(strlen(third), 307); /* "b" padded to the same width */
    free(s);
    nem_table_destroy(t);
}
END_TEST

START_TEST(utf8_counts_characters_not_bytes)
{
    ck_assert_uint_eq(nem_table_width("h\xc3\xa9llo"), 5);          /* héllo */
    ck_assert_uint_eq(nem_table_width("\xe6\x97\xa5\xe6\x9c\xac"), 2); /* 日本 */
    ck_assert_uint_eq(nem_table_width(""), 0);
    ck_assert_uint_eq(nem_table_width(NULL), 0);
    static const nem_table_col_t c2[] = {{"host", NEM_TABLE_LEFT, 0}, {"n", NEM_TABLE_RIGHT, 0}};
    nem_table_t *t = nem_table_new(c2, 2);
    nem_table_add(t, "h\xc3\xa9t\xc3\xa9rog\xc3\xa8ne"); /* hétérogène: 10 characters, 13 bytes */
    nem_table_add(t, "1");
    nem_table_add(t, "plain");
    nem_table_add(t, "2");
    char *s = printed(t, NULL);
    ck_assert_str_eq(s, "host        n\n"
                        "h\xc3\xa9t\xc3\xa9rog\xc3\xa8ne  1\n"
                        "plain       2\n");
    free(s);
    nem_table_destroy(t);
}
END_TEST

START_TEST(utf8_cells_are_cut_between_characters)
{
    static const nem_table_col_t capped[] = {{"w", NEM_TABLE_LEFT, 5}};
    nem_table_t *t = nem_table_new(capped, 1);
    nem_table_add(t, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"); /* six é: over 5, cut to 2 + "..." */
    char *s = printed(t, NULL);
    ck_assert_str_eq(s, "w\n\xc3\xa9\xc3\xa9...\n");
    free(s);
    nem_table_destroy(t);
}
END_TEST

START_TEST(control_characters_keep_a_row_on_one_line)
{
    static const nem_table_col_t c2[] = {{"script", NEM_TABLE_LEFT, 0}, {"error", NEM_TABLE_LEFT, 0}};
    nem_table_t *t = nem_table_new(c2, 2);
    nem_table_add(t, "learn-0");
    nem_table_add(t, "line one\nline\ttwo");
    char *s = printed(t, NULL);
    ck_assert_str_eq(s, "script   error\n"
                        "learn-0  line one line two\n");
    free(s);
    nem_table_destroy(t);
}
END_TEST

START_TEST(status_words_are_the_stored_ones)
{
    ck_assert_str_eq(nem_status_name(NEM_STATUS_RUNNING), "running");
    ck_assert_str_eq(nem_status_name(NEM_STATUS_SUCCEEDED), "succeeded");
    ck_assert_str_eq(nem_status_name(NEM_STATUS_FAILED), "failed");
    ck_assert_str_eq(nem_status_name(NEM_STATUS_INTERRUPTED), "interrupted");
    ck_assert_str_eq(nem_status_name(NEM_STATUS_LOST), "lost");
    ck_assert_str_eq(nem_status_name(NEM_STATUS_UNKNOWN), "?");
    ck_assert_str_eq(nem_status_name((nem_status_t)99), "?");
    /* every word reads back as itself */
    for (int s = 0; s < NEM_STATUS_UNKNOWN; s++)
        ck_assert_int_eq(nem_status_parse(nem_status_name((nem_status_t)s)), s);
    ck_assert_int_eq(nem_status_parse("ok"), NEM_STATUS_UNKNOWN);
    ck_assert_int_eq(nem_status_parse("FAILED"), NEM_STATUS_UNKNOWN);
    ck_assert_int_eq(nem_status_parse("?"), NEM_STATUS_UNKNOWN);
    ck_assert_int_eq(nem_status_parse(""), NEM_STATUS_UNKNOWN);
    ck_assert_int_eq(nem_status_parse(NULL), NEM_STATUS_UNKNOWN);
    /* a script's status, as the summary and the run record give it */
    ck_assert_str_eq(nem_status_name(nem_status_of_script(true)), "succeeded");
    ck_assert_str_eq(nem_status_name(nem_status_of_script(false)), "failed");
}
END_TEST

static Suite *table_suite(void)
{
    Suite *s = suite_create("table");
    TCase *t = tcase_create("table");
    tcase_add_test(t, widths_come_from_the_content);
    tcase_add_test(t, titles_wider_than_cells_set_the_width);
    tcase_add_test(t, no_line_ends_in_a_space);
    tcase_add_test(t, an_empty_table_prints_its_header);
    tcase_add_test(t, long_cells_are_cut_to_the_column_limit);
    tcase_add_test(t, long_cells_without_a_limit_widen_the_column);
    tcase_add_test(t, a_flushed_table_keeps_its_first_widths);
    tcase_add_test(t, utf8_counts_characters_not_bytes);
    tcase_add_test(t, utf8_cells_are_cut_between_characters);
    tcase_add_test(t, control_characters_keep_a_row_on_one_line);
    suite_add_tcase(s, t);
    TCase *st = tcase_create("status");
    tcase_add_test(st, status_words_are_the_stored_ones);
    suite_add_tcase(s, st);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(table_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
