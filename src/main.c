/* main.c: command line; written with the configuration module. */
int main(void)
{
	return 2;
}
