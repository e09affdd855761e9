// bpe_encode.cpp: prints the GPT-2 token ids of UTF-8 text, encoded with llmc/bpe.h.
//
//     make dev/bpe_encode
//     printf 'Hello world' | dev/bpe_encode          # 15496 995
//     dev/bpe_encode -z data/gpt2_tokenizer.bin a.txt b.txt
//     dev/bpe_encode -0 < texts                      # texts separated by NUL bytes
//
// Each input (a FILE, or stdin when there is none or it is "-") is one text, and its ids go on
// one line, separated by spaces. With -0 each input is split at NUL bytes into several texts,
// one line each: that is how scripts/test_bpe.py encodes thousands of strings in one run.
// Bytes that are not valid UTF-8 are read as Python's decode(errors="replace") reads them
// (see llmc/bpe.h). "<|endoftext|>" in the text is ordinary text.
#include <string>
#include <vector>

#include "llmc/bpe.h"

static const char* USAGE = "usage: dev/bpe_encode [-z TOKENIZER] [-0] [FILE...]";

struct Args {
    const char* tokenizer = "data/gpt2_tokenizer.bin";
    bool nul_separated = false;
    std::vector<const char*> inputs;  // "-" is stdin
};

static Args parse_args(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            printf("%s\n  -z TOKENIZER  GPT-2's tokenizer file (default %s)\n"
                   "  -0            each input holds texts separated by NUL bytes; one line of ids per text\n",
                   USAGE, a.tokenizer);
            exit(0);
        } else if (arg == "-z") {
            if (i + 1 >= argc) { die("-z", USAGE, "missing the tokenizer path"); }
            a.tokenizer = argv[++i];
        } else if (arg == "-0") {
            a.nul_separated = true;
        } else if (arg.size() > 1 && arg[0] == '-') {
            die(argv[i], USAGE, "unknown flag");
        } else {
            a.inputs.push_back(argv[i]);
        }
    }
    if (a.inputs.empty()) { a.inputs.push_back("-"); }
    return a;
}

// the whole of a file, or of stdin for "-"
static std::string read_all(const char* path) {
    bool is_stdin = strcmp(path, "-") == 0;
    FILE* f = is_stdin ? stdin : fopen_check(path, "rb", "check the path of the text to encode");
    std::string text;
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0) { text.append(buf, got); }
    if (ferror(f)) { die(is_stdin ? "stdin" : path, "check the input", "read failed (%s)", strerror(errno)); }
    if (!is_stdin) { fclose_check(f, path); }
    return text;
}

static std::vector<std::string> split_at_nul(const std::string& text) {
    std::vector<std::string> texts(1);
    for (char c : text) {
        if (c == '\0') {
            texts.emplace_back();
        } else {
            texts.back().push_back(c);
        }
    }
    return texts;
}

static void print_ids(const std::vector<int>& ids) {
    std::string line;
    for (size_t k = 0; k < ids.size(); k++) {
        if (k > 0) { line.push_back(' '); }
        line += std::to_string(ids[k]);
    }
    line.push_back('\n');
    fwrite_check(line.data(), 1, line.size(), stdout, "stdout");
}

int main(int argc, char** argv) {
    Args a = parse_args(argc, argv);
    // tokenizer_init only warns about a missing file (training can do without it); here it is needed
    fclose(fopen_check(a.tokenizer, "rb", "prepare the data first (scripts/prepare_data.py) or pass -z PATH"));
    Tokenizer tok;
    tokenizer_init(&tok, a.tokenizer);
    BpeEncoder enc = bpe_encoder_init(tok);
    for (const char* path : a.inputs) {
        std::string text = read_all(path);
        if (a.nul_separated) {
            for (const std::string& t : split_at_nul(text)) { print_ids(bpe_encode(enc, t)); }
        } else {
            print_ids(bpe_encode(enc, text));
        }
    }
    if (fflush(stdout) != 0) { die("stdout", "check where the output goes", "write failed (%s)", strerror(errno)); }
    tokenizer_free(&tok);
    return 0;
}
